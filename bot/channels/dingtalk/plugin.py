"""The DingTalk plug-in as far as it exists: ``[dingtalk]`` and the org CSV's staff ids (``user_identities`` under
``dingtalk``). No routes and no delivery channel yet (issue 13 adds ``build`` and ``setup``); notices reach DingTalk
people on another channel meanwhile."""

from __future__ import annotations

from bot.channels.base import ChannelPlugin, IdentityColumn


class DingTalkPlugin(ChannelPlugin):
    name = "dingtalk"
    section = "dingtalk"
    identity = IdentityColumn("dingtalk_staff_id", "钉钉ID", ("钉钉ID", "钉钉"))


PLUGIN = DingTalkPlugin()
