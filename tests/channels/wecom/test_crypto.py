"""WeComCrypto against the official WeCom vector, round trips, and every way a callback can be forged or broken."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.channels.wecom.crypto import CallbackRejected, WeComCrypto

# Official vector (WeCom sample code for WXBizMsgCrypt, https://developer.work.weixin.qq.com/document/path/90968).
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
POST_TIMESTAMP = "1409659813"
POST_NONCE = "1372623149"
POST_SIGNATURE = "477715d11cdb4164915debcba66cb864d751f3e6"
POST_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3"
    "TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5g"
    "sijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQ"
    "Uax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2u"
    "yPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
GET_TIMESTAMP = "1409659589"
GET_NONCE = "263014780"
GET_SIGNATURE = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
GET_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="


@pytest.fixture
def crypto() -> WeComCrypto:
    return WeComCrypto(TOKEN, AES_KEY, CORP_ID)


def test_official_message_vector_decrypts_to_hello(crypto: WeComCrypto) -> None:
    xml = crypto.decrypt(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT)
    assert "<Content><![CDATA[hello]]></Content>" in xml
    assert "<MsgId>4561255354251345929</MsgId>" in xml
    assert crypto.signature(POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT) == POST_SIGNATURE


def test_official_url_verification_vector(crypto: WeComCrypto) -> None:
    assert crypto.verify_url(GET_SIGNATURE, GET_TIMESTAMP, GET_NONCE, GET_ECHOSTR) == "1616140317555161061"


def test_round_trip_and_wechatpy_agrees(crypto: WeComCrypto) -> None:
    xml = "<xml><Content><![CDATA[拜访 协和医院 ]]></Content></xml>"
    encrypt, signature = crypto.encrypt(xml, "nonce1", "1700000000")
    assert crypto.decrypt(signature, "1700000000", "nonce1", encrypt) == xml
    # The envelope is byte-compatible with wechatpy (WeCom's reference layout).
    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    assert theirs.decrypt_message({"Encrypt": encrypt}, signature, "1700000000", "nonce1") == xml


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 1000])
def test_round_trip_every_padding_length(crypto: WeComCrypto, size: int) -> None:
    xml = "x" * size
    encrypt, signature = crypto.encrypt(xml, "n", "1")
    assert len(base64.b64decode(encrypt)) % 32 == 0
    assert crypto.decrypt(signature, "1", "n", encrypt) == xml


def test_fresh_random_prefix_each_time(crypto: WeComCrypto) -> None:
    assert crypto.encrypt("<xml/>", "n", "1")[0] != crypto.encrypt("<xml/>", "n", "1")[0]


@pytest.mark.parametrize(
    "signature",
    [
        POST_SIGNATURE[:-1] + "0",
        POST_SIGNATURE.upper(),
        "",
        "477715d11cdb4164915debcba66cb864d751f3e",
        "密" * 40,
    ],
)
def test_tampered_signature_is_403(crypto: WeComCrypto, signature: str) -> None:
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT)
    assert err.value.status == 403


@pytest.mark.parametrize("field", ["timestamp", "nonce", "encrypt"])
def test_any_signed_field_changed_is_403(crypto: WeComCrypto, field: str) -> None:
    args = {"timestamp": POST_TIMESTAMP, "nonce": POST_NONCE, "encrypt": POST_ENCRYPT}
    args[field] = args[field][:-2] + ("A" if args[field][-2] != "A" else "B") + args[field][-1]
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(POST_SIGNATURE, args["timestamp"], args["nonce"], args["encrypt"])
    assert err.value.status == 403


def test_wrong_token_is_403() -> None:
    other = WeComCrypto("otherToken", AES_KEY, CORP_ID)
    with pytest.raises(CallbackRejected) as err:
        other.decrypt(POST_SIGNATURE, POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT)
    assert err.value.status == 403


def test_wrong_corp_id_is_403(crypto: WeComCrypto) -> None:
    sealed_for_other = WeComCrypto(TOKEN, AES_KEY, "wwsomeothercorp")
    encrypt, signature = sealed_for_other.encrypt("<xml/>", "n", "1")
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert err.value.status == 403
    assert "wwsomeothercorp" not in err.value.reason


def test_corp_id_prefix_is_not_enough(crypto: WeComCrypto) -> None:
    sealed = WeComCrypto(TOKEN, AES_KEY, CORP_ID + "x")
    encrypt, signature = sealed.encrypt("<xml/>", "n", "1")
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert err.value.status == 403


def _aes() -> Cipher[modes.CBC]:
    """The envelope's AES-256-CBC, built independently of the code under test: key = b64(EncodingAESKey + "=")."""
    key = base64.b64decode(AES_KEY + "=")
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def _reseal(plain: bytes) -> bytes:
    enc = _aes().encryptor()
    return enc.update(plain) + enc.finalize()


def _official_plaintext() -> bytearray:
    dec = _aes().decryptor()
    return bytearray(dec.update(base64.b64decode(POST_ENCRYPT)) + dec.finalize())


def _resigned(crypto: WeComCrypto, raw: bytes) -> tuple[str, str]:
    encrypt = base64.b64encode(raw).decode()
    return crypto.signature("1", "n", encrypt), encrypt


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda raw: raw[:-16], id="last-block-dropped"),
        pytest.param(lambda raw: raw[:-3], id="not-whole-blocks"),
        pytest.param(lambda raw: raw[:16], id="one-block"),
        pytest.param(lambda raw: b"", id="empty"),
    ],
)
def test_truncated_ciphertext_is_400(crypto: WeComCrypto, cut: Callable[[bytes], bytes]) -> None:
    raw = base64.b64decode(POST_ENCRYPT)
    signature, encrypt = _resigned(crypto, cut(raw))
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert err.value.status == 400


def test_not_base64_is_400(crypto: WeComCrypto) -> None:
    encrypt = POST_ENCRYPT[:10] + "*" + POST_ENCRYPT[11:]
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(crypto.signature("1", "n", encrypt), "1", "n", encrypt)
    assert err.value.status == 400


def test_bad_padding_is_400(crypto: WeComCrypto) -> None:
    # A valid envelope whose last block decrypts to padding byte 0 (never valid PKCS#7).
    plain = _official_plaintext()
    plain[-1] = 0
    signature, encrypt = _resigned(crypto, _reseal(bytes(plain)))
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert (err.value.status, err.value.reason) == (400, "bad padding")


def test_padding_bytes_must_all_match(crypto: WeComCrypto) -> None:
    plain = _official_plaintext()
    pad = plain[-1]
    assert pad == 30
    plain[-pad] = 31
    signature, encrypt = _resigned(crypto, _reseal(bytes(plain)))
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert (err.value.status, err.value.reason) == (400, "bad padding")


def test_length_prefix_beyond_frame_is_400(crypto: WeComCrypto) -> None:
    plain = _official_plaintext()
    plain[16:20] = (10**6).to_bytes(4, "big")
    signature, encrypt = _resigned(crypto, _reseal(bytes(plain)))
    with pytest.raises(CallbackRejected) as err:
        crypto.decrypt(signature, "1", "n", encrypt)
    assert err.value.status == 400


def test_reasons_never_quote_secrets_or_payload(crypto: WeComCrypto) -> None:
    reasons = []
    for args in [
        ("bad", POST_TIMESTAMP, POST_NONCE, POST_ENCRYPT),
        (crypto.signature("1", "n", "QUJD"), "1", "n", "QUJD"),
    ]:
        with pytest.raises(CallbackRejected) as err:
            crypto.decrypt(*args)
        reasons.append(str(err.value))
    for reason in reasons:
        assert TOKEN not in reason and AES_KEY not in reason and "QUJD" not in reason


@pytest.mark.parametrize("key", ["", AES_KEY[:-1], AES_KEY + "A", AES_KEY[:-1] + "!"])
def test_bad_encoding_aes_key_refused_at_construction(key: str) -> None:
    with pytest.raises(ValueError):
        WeComCrypto(TOKEN, key, CORP_ID)
