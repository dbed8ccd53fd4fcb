"""``salesbot dingtalk setup``: check ``[dingtalk]``, fetch a token (the app key and secret work), register the card
callback URL when a card template is configured (HTTP mode), and print what the admin still has to do in the
developer console (zh-CN). ``--test-card STAFF_ID`` also sends that person a card through the configured template:
the one way to learn that DingTalk knows the template and that it is published (there is no API to read a
template). Exits 1 when something is wrong. Its few API calls are not counted in ``platform_api_calls``."""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.channels.base import CliSupport
    from bot.config import DingTalkConfig

CARD_CALLBACK_PATH = "/dingtalk/card"
ROBOT_CALLBACK_PATH = "/dingtalk/callback"
REGISTER = "/v1.0/card/callbacks/register"
# What DingTalk answers createAndDeliver when the template id is wrong or the template is not published.
TEMPLATE_ERRORS = {
    "param.templateNotExist": "钉钉找不到模板 {tpl}：检查 [dingtalk] card_template_id，模板要建在本应用下",
    "param.templateUnpublished": "模板 {tpl} 还没有发布：在卡片平台打开它，点「发布」",
}


class SetupFailed(Exception):
    """A check failed; the message says what to do, in zh-CN."""


def problems(cfg: DingTalkConfig) -> list[str]:
    """What makes ``[dingtalk]`` unusable, in zh-CN (empty: fine)."""
    out = []
    if not cfg.enabled:
        out.append("[dingtalk] enabled = false：先把 enabled 设为 true")
    for key, value in (
        ("app_key", cfg.app_key),
        ("app_secret", cfg.app_secret.get_secret_value()),
        ("robot_code", cfg.robot_code),
    ):
        if not value:
            out.append(f"[dingtalk] {key} 没有填写")
    if cfg.mode == "http" and not cfg.public_base_url:
        out.append("[dingtalk] public_base_url 没有填写：钉钉回调和按钮链接都需要本机器人的公网地址")
    return out


def steps(cfg: DingTalkConfig) -> list[str]:
    """The console steps left to the admin, in zh-CN."""
    base = cfg.public_base_url or "https://<本机器人的公网地址>"
    out = [
        "在钉钉开发者后台（open-dev.dingtalk.com）→ 应用开发 → 企业内部应用，打开本应用：",
        "1. 添加应用能力 → 机器人：消息接收模式选 "
        + ("Stream 模式" if cfg.mode == "stream" else f"HTTP 模式，消息接收地址填 {base}{ROBOT_CALLBACK_PATH}"),
        "2. 权限管理：开通「企业内机器人发送消息权限」「互动卡片实例写权限」（Card.Instance.Write）"
        "「通讯录个人信息读权限」，以及「机器人文件下载」相关权限",
        "3. 版本管理与发布：发布应用，并把可使用范围设为要用机器人的员工（员工 ID 写进组织 CSV 的「钉钉ID」列）",
    ]
    if cfg.card_template_id:
        out.append(f"4. 卡片平台：模板 {cfg.card_template_id} 已配置；确认它已发布，并关联到本应用")
    else:
        out += [
            "4. 卡片平台（open-dev.dingtalk.com/fe/card）：新建互动卡片模板（消息卡片），导入仓库里的 "
            "cards/dingtalk_template.json（变量：title、status、description、fields、buttons …），发布，"
            "把模板 ID 填到 [dingtalk] card_template_id，再运行一次 salesbot dingtalk setup",
            "   没有模板时，任务卡片以普通卡片消息发出，按钮是带签名的一次性链接，照样能用",
        ]
    out.append("5. 应用凭证里的 AppSecret 放在环境变量 SALESBOT__DINGTALK__APP_SECRET，不要写进配置文件")
    return out


def command(cli: CliSupport) -> click.Group:
    _load, _run, config_option = cli.load, cli.run, cli.config_option

    @click.group()
    def dingtalk() -> None:
        """DingTalk channel."""

    @dingtalk.command("setup")
    @config_option
    @click.option(
        "--test-card",
        "test_card",
        metavar="STAFF_ID",
        default=None,
        help="Also send this DingTalk staff id a test card through the configured template.",
    )
    def dingtalk_setup(config_path: str | None, test_card: str | None) -> None:
        """Check [dingtalk], register the card callback, and print the developer-console steps left."""
        from bot.channels.dingtalk.channel import CREATE_AND_DELIVER, card_body
        from bot.channels.dingtalk.client import DingTalkClient, DingTalkError
        from cards.model import Card

        settings = _load(config_path)
        cfg = settings.dingtalk
        found = problems(cfg)
        if found:
            for p in found:
                click.echo(f"✗ {p}", err=True)
            sys.exit(1)

        async def go() -> list[str]:
            client = DingTalkClient(
                base_url=cfg.api_base_url,
                app_key=cfg.app_key,
                app_secret=cfg.app_secret.get_secret_value(),
                timeout=cfg.request_timeout_seconds,
            )
            done: list[str] = []
            try:
                await client.token()
                done.append("✓ AppKey / AppSecret 正确，已取得 access token")
                if cfg.card_template_id and cfg.mode == "http":
                    url = cfg.public_base_url + CARD_CALLBACK_PATH
                    body = {
                        "callbackRouteKey": cfg.card_callback_route_key,
                        "callbackUrl": url,
                        "apiSecret": cfg.card_api_secret.get_secret_value(),
                        "forceUpdate": True,
                    }
                    await client.post(REGISTER, body)
                    done.append(f"✓ 卡片回调已注册：{cfg.card_callback_route_key} → {url}")
                elif cfg.card_template_id:
                    done.append("✓ Stream 模式：卡片回调经 Stream 连接送达，无需注册回调地址")
                if test_card and cfg.card_template_id:
                    card = Card(
                        ref=f"setup-check-{secrets.token_hex(6)}",
                        title="salesbot 卡片模板检查",
                        description="看到这张卡片，说明模板可用。",
                        status="检查完成",
                        tone="success",
                    )
                    try:
                        await client.post(CREATE_AND_DELIVER, card_body(cfg, card, [test_card]))
                    except DingTalkError as exc:
                        hint = TEMPLATE_ERRORS.get(exc.code)
                        if hint is None:
                            raise
                        raise SetupFailed(hint.format(tpl=cfg.card_template_id)) from None
                    done.append(f"✓ 模板 {cfg.card_template_id} 可用：测试卡片已发给 {test_card}")
                elif test_card:
                    done.append("· 没有配置 card_template_id：--test-card 无卡片可试（任务卡片以带链接的卡片消息发出）")
            finally:
                await client.close()
            return done

        try:
            done = _run(go)
        except SetupFailed as exc:
            click.echo(f"✗ {exc}", err=True)
            sys.exit(1)
        except DingTalkError as exc:
            click.echo(f"✗ 钉钉拒绝了请求：{exc.code} {exc.message}", err=True)
            sys.exit(1)
        for line in done:
            click.echo(line)
        click.echo("")
        for line in steps(cfg):
            click.echo(line)

    return dingtalk
