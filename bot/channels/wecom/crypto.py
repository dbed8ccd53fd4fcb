"""WeCom callback envelope: msg_signature check and AES-256-CBC decryption of ``echostr`` / ``<Encrypt>``.

AES and the envelope layout come from wechatpy; the signature is compared here in constant time, and the decrypted
frame (PKCS#7 padding, length prefix, receive id) is checked strictly, because wechatpy's own ``_decrypt`` accepts
any padding byte and would report a truncated ciphertext as a wrong corp id or return garbage.
https://developer.work.weixin.qq.com/document/path/90968 (加解密方案说明)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct

from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

# 16 random bytes, then the 4-byte big-endian length of the message.
_PREFIX = 16
_LENGTH = 4
# WeCom pads to a multiple of 32 bytes (not the AES block size of 16), so padding runs from 1 to 32.
_MAX_PADDING = 32
_AES_BLOCK = 16
_AES_KEY = re.compile(r"[A-Za-z0-9+/]{43}")


class CallbackRejected(Exception):
    """A callback that must not be processed: ``status`` is the HTTP answer, ``reason`` is safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class WeComCrypto:
    """Verifies and opens WeCom callbacks for one app (token, EncodingAESKey, corp id); also seals them (tests)."""

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str) -> None:
        if not _AES_KEY.fullmatch(encoding_aes_key):
            raise ValueError("encoding_aes_key must be 43 base64 characters")
        if not token or not corp_id:
            raise ValueError("token and corp_id are required")
        self._token = token.encode()
        self._corp_id = corp_id.encode()
        wechat = WeChatCrypto(token, encoding_aes_key, corp_id)
        self._prp = PrpCrypto(wechat.key)

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """``sha1`` over the sorted token, timestamp, nonce and ciphertext, lowercase hex."""
        parts = sorted([self._token, timestamp.encode(), nonce.encode(), encrypt.encode()])
        return hashlib.sha1(b"".join(parts)).hexdigest()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The plaintext of a URL-verification ``echostr`` (answer it verbatim)."""
        return self.decrypt(msg_signature, timestamp, nonce, echostr)

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Check the signature, decrypt ``encrypt`` and check the receive id; return the inner XML text."""
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode()):
            raise CallbackRejected(403, "bad msg_signature")
        message, receive_id = self._open(encrypt)
        if not hmac.compare_digest(receive_id, self._corp_id):
            raise CallbackRejected(403, "receive id is not our corp id")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRejected(400, "decrypted message is not UTF-8") from None

    def encrypt(self, xml: str, nonce: str, timestamp: str) -> tuple[str, str]:
        """Seal ``xml`` as WeCom does: (base64 ciphertext for ``<Encrypt>``, msg_signature)."""
        encrypt = self._prp.encrypt(xml, self._corp_id.decode()).decode("ascii")
        return encrypt, self.signature(timestamp, nonce, encrypt)

    def _open(self, encrypt: str) -> tuple[bytes, bytes]:
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRejected(400, "ciphertext is not base64") from None
        if not raw or len(raw) % _AES_BLOCK:
            raise CallbackRejected(400, "ciphertext is not a whole number of AES blocks")
        plain: bytes = self._prp.cipher.decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= _MAX_PADDING or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRejected(400, "bad padding")
        frame = plain[_PREFIX:-pad]
        if len(frame) < _LENGTH:
            raise CallbackRejected(400, "decrypted frame too short")
        (length,) = struct.unpack(">I", frame[:_LENGTH])
        if _LENGTH + length > len(frame):
            raise CallbackRejected(400, "message length exceeds the frame")
        return frame[_LENGTH : _LENGTH + length], frame[_LENGTH + length :]
