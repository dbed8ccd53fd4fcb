"""One engine for form dialogs (the visit, the support request; plans and grade changes next).

A flow subclasses ``FormDialog`` with its ``Form``, its state model and a few hooks (parse a whole line, the
question for a field, the confirmation card's rows, submit). The engine owns the rest, the same for every flow:

- the stale-button token: every button carries the dialog's token; a tap on a card of an ended or replaced dialog
  is answered "按钮已过期" and changes nothing;
- asking the next missing field (a choice card when the field has options, else a text question), then the
  optional ones worth asking (``FieldSpec.skippable``: a 跳过 button, or 跳过 / 无 typed);
- ``字段:值`` corrections at any step, keys matched against the form's labels and aliases;
- dependent fields validated again whenever what they depend on changes (the ward on the hospital);
- saying what was understood after each answer, resolved (``✓ 医院：浙江大学医学院附属第一医院``);
- the confirmation card: a correction there gets a short reply and a fresh card at the bottom, the old one settled;
- cancel, and settling every card of the dialog when it ends (cancelled, submitted, replaced, expired);
- global commands escaping the dialog: a text that starts with another route's command word is left to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, Literal, get_args

from bot.core.conversation import CANCELLED, EXIT_KEY, EXPIRED, REPLACED
from bot.core.events import CardAction
from bot.core.routing import Context, Filter, Router, is_text, normalize_text, split_command
from bot.dialogs.form import Form, fold
from bot.dialogs.state import DialogState, OpenCard, Option, S, dump, load
from cards.model import Card
from cards.visits import ConfirmOp, DialogChoice, DialogConfirm, choice_card, settled_choice

EDIT_WORDS = ("修改", "更正", "edit", "correct")
# The value of an optional question's 跳过 button, and the words that skip it when typed (folded).
SKIP = "skip"
SKIP_WORDS = frozenset({SKIP, "跳过", "略过", "无", "没有", "暂无", "none", "n/a", "-"})

# Flows by name (for the filters that need the user's current form) and the commands that start with an edit word
# but are not a correction of the dialog (``修改 V12 …`` edits a submitted visit).
_FLOWS: dict[str, type[FormDialog[Any]]] = {}
_EDIT_ESCAPES: list[Callable[[str], bool]] = []

Kind = Literal["correction", "answer", "edit_hint", "escape"]


def escape_edit(predicate: Callable[[str], bool]) -> None:
    """Register a command that starts with an edit word (``修改 V12 …``): ``predicate`` gets the text after it."""
    _EDIT_ESCAPES.append(predicate)


# (dispatcher id, settings id) → (the dispatcher, the settings, the words): the objects are kept so that their ids
# cannot be reused by new objects while the entry lives.
_WORDS_CACHE: dict[tuple[int, int], tuple[object, object, list[str]]] = {}


def _command_words(ctx: Context) -> list[str]:
    """The words that start a command of any route, and the request-type keywords (from config). Computed once per
    dispatcher and settings object (a config reload brings a new settings object, so new keywords count at once)."""
    key = (id(ctx.runtime.dispatcher), id(ctx.runtime.settings))
    cached = _WORDS_CACHE.get(key)
    if cached is not None and cached[0] is ctx.runtime.dispatcher and cached[1] is ctx.runtime.settings:
        return cached[2]
    words: set[str] = set()
    for router in ctx.runtime.dispatcher.routers:
        words |= router.command_words()
    for rt in ctx.runtime.settings.request_types.values():
        words.update(rt.keywords)
    edit = {w.casefold() for w in EDIT_WORDS}
    result = [w for w in words if w.casefold() not in edit]
    if len(_WORDS_CACHE) > 16:
        _WORDS_CACHE.clear()
    _WORDS_CACHE[key] = (ctx.runtime.dispatcher, ctx.runtime.settings, result)
    return result


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _starts_command(text: str, words: list[str], *, answering: bool) -> bool:
    """Whether ``text`` is another route's command. While a question waits (``answering``) an answer may begin
    with a command word run into Chinese (备注 "拜访时带资料"): only a word set apart (``拜访 浙一``, ``进度R1``, the
    word alone) is a command then."""
    rest = split_command(text, words)
    if rest is None:
        return False
    if not answering or not rest:
        return True
    norm = normalize_text(text)
    head = norm[: len(norm) - len(rest)]
    return head[-1] in " \t:：" or not _is_cjk(rest[0])


def classify(ctx: Context, form: Form, *, answering: bool = False) -> Kind:
    """What a text means inside a dialog of ``form`` (``answering``: a question is waiting for its answer)."""
    text = ctx.text.strip()
    edit = split_command(text, EDIT_WORDS)
    body = edit if edit is not None else text
    kind = form.correction(body)
    if kind == "direct":
        return "correction"
    if edit is not None:
        if edit and any(p(edit) for p in _EDIT_ESCAPES):
            return "escape"
        return "correction" if kind else "edit_hint"
    if _starts_command(text, _command_words(ctx), answering=answering):
        return "escape"
    return "correction" if kind else "answer"


def _current(ctx: Context) -> FormDialog[Any] | None:
    cls = _FLOWS.get(ctx.conversation.flow or "")
    if cls is None:
        return None
    state = load(cls.state_model, ctx.conversation.data)
    return cls(ctx, state) if state is not None else None


def in_dialog(flow: str) -> Filter:
    """A text for the ``flow`` dialog the user is in: an answer, a correction or an edit request, not a command
    of another route (those work inside any dialog). A dialog whose stored state cannot be read takes the text
    too, to say so."""

    def check(ctx: Context) -> bool:
        if ctx.conversation.flow != flow or not is_text(ctx):
            return False
        dialog = _current(ctx)
        if dialog is None:
            return classify(ctx, Form([])) != "escape"
        return classify(ctx, dialog.form, answering=dialog.answering) != "escape"

    return check


def leaves_dialog(ctx: Context) -> bool:
    """For a command route: False when the text belongs to the user's running dialog instead (a ``字段:值`` that
    starts with one of its fields, ``拜访时间:昨天``; an answer that merely begins with a command word); True
    otherwise, and outside any dialog."""
    dialog = _current(ctx)
    if dialog is None or not is_text(ctx):
        return True
    return classify(ctx, dialog.form, answering=dialog.answering) == "escape"


class FormDialog(Generic[S]):
    """A running dialog: the state of one flow plus the replies it collects for one event."""

    # The flow's name; its texts are named after it (``<flow>.edit_hint``, ``<flow>.ask.hint``).
    flow: ClassVar[str]
    # The state's class: the ``S`` a flow subclasses with (``HospitalDialog[VisitState]``).
    state_model: ClassVar[type[Any]]
    # Card refs start with this; the choice and confirmation buttons are of these payload classes.
    ref_prefix: ClassVar[str]
    choice_payload: ClassVar[type[DialogChoice]]
    confirm_payload: ClassVar[type[DialogConfirm]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            model = next(iter(get_args(base)), None)
            if isinstance(model, type):
                cls.state_model = model
        if "flow" in cls.__dict__:
            _FLOWS[cls.flow] = cls

    def __init__(self, ctx: Context, state: S) -> None:
        self.ctx = ctx
        self.state: S = state
        self.notes: list[str] = []
        self.changed: list[str] = []
        # The question this event answered was skipped (its card then says so).
        self.skipped_now = False
        self.form = self.build_form()

    # ---- hooks a flow provides ---------------------------------------------------------------------------------

    def build_form(self) -> Form:
        raise NotImplementedError

    async def parse_line(self, text: str) -> None:
        """Take every field a whole line gives (positional words and ``字段:值`` pairs)."""
        raise NotImplementedError

    def question(self, key: str, options: Sequence[tuple[str, str]] = ()) -> str:
        """The question asking for ``key`` (``options``: the buttons it comes with, if any)."""
        raise NotImplementedError

    def shown(self, key: str) -> str:
        """The field's value as the rep reads it (resolved: the hospital's name, not what was typed)."""
        value = self.state.get(key)
        if isinstance(value, list):
            return "、".join(str(v) for v in value)
        return "" if value is None else str(value)

    async def rows(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def confirm_card(self, ref: str, rows: Sequence[tuple[str, str]], status: str = "") -> Card:
        """The confirmation card; with ``status`` settled (no buttons)."""
        raise NotImplementedError

    async def tapped(self, key: str, value: str) -> bool:
        """A choice button's value for ``key``; False when it no longer means anything (then: stale button)."""
        await self.answer(key, value)
        return True

    async def check(self) -> None:
        """Checks every path into the state ends with (e.g. column lengths); notes and drops what fails."""

    def missing(self) -> list[str]:
        return [f.key for f in self.form.fields if f.required and not self.state.get(f.key)]

    def optional(self) -> list[str]:
        """Optional fields still worth asking, asked after ``missing()`` with a 跳过 button: the ``skippable`` ones
        not given and not skipped, once the dialog asks questions at all (a line that gave every required field goes
        straight to the card; the first question sets ``hinted``)."""
        if not self.state.hinted:
            return []
        return [
            f.key
            for f in self.form.fields
            if f.skippable and not f.required and not self.state.get(f.key) and f.key not in self.state.skipped
        ]

    # ---- starting and resuming ---------------------------------------------------------------------------------

    @classmethod
    def begin(cls, ctx: Context, state: S) -> FormDialog[S]:
        """A new dialog; a dialog already running is replaced (its cards are settled as it leaves)."""
        ctx.conversation.start(cls.flow, {})
        dialog = cls(ctx, state)
        dialog.save()
        return dialog

    @classmethod
    def resume(cls, ctx: Context) -> FormDialog[Any] | None:
        """The running dialog of this flow; None (and the rep told, the state dropped) when its stored shape is
        from another version of the bot."""
        state = load(cls.state_model, ctx.conversation.data)
        if state is None:
            ctx.conversation.clear()
            ctx.reply(ctx.t("dialog.stale_state"))
            return None
        return cls(ctx, state)

    @classmethod
    def for_tap(cls, ctx: Context, tap: DialogChoice | DialogConfirm) -> FormDialog[Any] | None:
        """The dialog, when the tapped button belongs to the running dialog of this flow (its token; for a confirm
        button, its confirmation card on screen); else None."""
        if ctx.conversation.flow != cls.flow:
            return None
        state = load(cls.state_model, ctx.conversation.data)
        if state is None or tap.token != state.token:
            return None
        if isinstance(tap, DialogConfirm):
            ref = ctx.event.card_ref if isinstance(ctx.event, CardAction) else ""
            if state.confirm is None or (ref and ref != state.confirm.ref):
                return None
        return cls(ctx, state)

    @property
    def edit_hint(self) -> str:
        """The text's key saying how to change a value at the confirmation card."""
        return f"{self.flow}.edit_hint"

    @property
    def hint(self) -> str:
        """The text's key added under a question with buttons: correct or cancel at any time, by typing."""
        return f"{self.flow}.ask.hint"

    @property
    def answering(self) -> bool:
        """A question waits for its answer (not at the confirmation card)."""
        return self.state.stage == "collect" and self.state.awaiting is not None

    # ---- values --------------------------------------------------------------------------------------------------

    def set(self, key: str, value: Any) -> None:
        """Every write of a field goes here, so the engine knows what changed."""
        if value in (None, "", []):
            self.drop(key)
            return
        self.state.put(key, value)
        self.changed.append(key)

    def drop(self, key: str) -> None:
        if self.state.get(key) not in (None, "", []):
            self.state.put(key, None)
        self.changed.append(key)

    def note(self, key: str, **params: Any) -> None:
        self.notes.append(self.ctx.t(key, **params))

    async def answer(self, key: str, text: str) -> None:
        """A typed (or tapped) answer to the question about ``key``; 跳过 / 无 skips an optional question."""
        if fold(text) in SKIP_WORDS and key in self.optional():
            self.state.skipped = [*self.state.skipped, key]
            self.skipped_now = True
            return
        f = self.form.field(key)
        if f.parse is not None:
            await f.parse(self, text)
        else:
            self.set(key, text.strip())

    async def _settle_changes(self) -> list[tuple[str, str]]:
        """Validate what depends on what changed; (key, line saying what was understood) per changed field."""
        changed = set(self.changed)
        for f in self.form.dependents(changed):
            if self.state.get(f.key) not in (None, "", []) and f.validate is not None:
                await f.validate(self)
        await self.check()
        said: list[tuple[str, str]] = []
        for f in self.form.fields:
            if f.key in changed and self.state.get(f.key) not in (None, "", []):
                line = self.ctx.t("dialog.understood", label=f.label(self.ctx.locale), value=self.shown(f.key))
                said.append((f.key, line))
        self.changed = []
        return said

    # ---- the routes' entry points --------------------------------------------------------------------------------

    async def start_with(self, text: str, note: str = "") -> None:
        """The opening line (``拜访 浙一 骨科 …``): what it gave shows on the next question or on the card."""
        if note:
            self.notes.append(note)
        if text:
            await self.parse_line(text)
        await self._settle_changes()
        await self.advance()

    async def on_text(self) -> None:
        """A text inside the dialog: a correction, an answer to the open question, or (at the card) a hint."""
        ctx = self.ctx
        kind = classify(ctx, self.form, answering=self.answering)
        text = ctx.text.strip()
        if kind == "edit_hint" or (kind == "answer" and self.state.stage == "confirm"):
            ctx.reply(ctx.t(self.edit_hint))
            return
        at_confirm = self.state.stage == "confirm"
        awaiting = self.state.awaiting or self.form.fields[0].key
        if kind == "correction":
            edit = split_command(text, EDIT_WORDS)
            await self.parse_line(edit if edit is not None else text)
        else:
            await self.answer(awaiting, text)
        if at_confirm and not self.changed:
            # Nothing taken (an unknown field, a value that does not parse): the reason, and the card stays.
            self.notes = self.notes or [ctx.t(self.edit_hint)]
            self.flush()
            return
        said = await self._settle_changes()
        if self.skipped_now:
            self._settle_question(ctx.t("dialog.settled.skipped"))
        elif self.state.get(awaiting) not in (None, "", []) and (kind == "answer" or awaiting in dict(said)):
            self._settle_question(f"✓ {self.shown(awaiting)}")
        elif said:
            self._settle_question("✓ " + "；".join(line.removeprefix("✓ ") for _, line in said))
        else:
            self._settle_question(f"✗ {text}")
        self.notes[:0] = [line for _, line in said]
        await self.advance(fresh=at_confirm)

    async def on_choice(self, key: str, value: str) -> None:
        """A tap on a choice button."""
        if not self.form.has(key) or not await self.tapped(key, value):
            self.ctx.reply(self.ctx.t("stale_button"))
            return
        said = await self._settle_changes()
        if self.skipped_now:
            self._settle_question(self.ctx.t("dialog.settled.skipped"))
        elif self.state.get(key) not in (None, "", []):
            self._settle_question(f"✓ {self.shown(key)}")
        else:
            self._settle_question(f"✗ {value}")
        # The settled card shows the answer; what else the tap changed (a ward dropped, …) is said.
        self.notes[:0] = [line for k, line in said if k != key]
        await self.advance()

    async def on_confirm(self, op: ConfirmOp) -> None:
        """提交 / 修改 / 取消 on the confirmation card."""
        ctx = self.ctx
        if op == ConfirmOp.EDIT:
            ctx.reply(ctx.t(self.edit_hint))
            return
        if op == ConfirmOp.CANCEL:
            await self.settle_confirm(ctx.t("dialog.settled.cancelled"))
            self.finish()
            ctx.reply(ctx.t("cancelled"))
            return
        await self.submit()

    async def submit(self) -> None:
        raise NotImplementedError

    # ---- asking and confirming -----------------------------------------------------------------------------------

    def _next_ref(self, kind: str) -> str:
        self.state.seq += 1
        return f"{self.ref_prefix}{kind}-{self.state.token}-{self.state.seq}"

    def flush(self) -> None:
        if self.notes:
            self.ctx.reply("\n".join(self.notes))
            self.notes = []

    def _settle_question(self, status: str) -> None:
        """The open question card is answered: no more buttons, ``status`` says what was understood."""
        open_card = self.state.question
        if open_card is None:
            return
        self.state.question = None
        card = settled_choice(open_card.ref, open_card.title, "")
        self.ctx.update_card(card.model_copy(update={"status": status}))

    async def advance(self, *, fresh: bool = False) -> None:
        """Ask for the next missing field, or show the confirmation card when nothing is missing. ``fresh``: a
        change at the card, which goes out anew at the bottom (the old one settled)."""
        state = self.state
        if state.options and state.awaiting and not state.get(state.awaiting):
            options = [(o.label, o.value) for o in state.options]
            state.options = []
            await self._ask(state.awaiting, options)
            return
        state.options = []
        missing = self.missing()
        if missing:
            key = missing[0]
            choices = self.form.field(key).choices
            await self._ask(key, await choices(self) if choices is not None else [])
            return
        optional = self.optional()
        if optional:
            await self._ask(optional[0], [(self.ctx.t("dialog.skip"), SKIP)], skippable=True)
            return
        state.stage = "confirm"
        state.awaiting = None
        self.flush()
        rows = await self.rows()
        if state.confirm is not None and not fresh:
            # A refresh (new evidence, not a change by the rep): the card on screen shows it.
            self.ctx.update_card(self.confirm_card(state.confirm.ref, rows))
            state.confirm = OpenCard(ref=state.confirm.ref, title="", rows=[list(r) for r in rows])
            self.save()
            return
        if state.confirm is not None:
            await self.settle_confirm(self.ctx.t("dialog.settled.updated"))
        ref = self._next_ref("c")
        self.ctx.reply_card(self.confirm_card(ref, rows))
        state.confirm = OpenCard(ref=ref, title="", rows=[list(r) for r in rows])
        self.save()

    async def _ask(self, key: str, options: list[tuple[str, str]], *, skippable: bool = False) -> None:
        state = self.state
        self._settle_question(self.ctx.t("dialog.settled.updated"))
        if state.confirm is not None:
            # Back from the card to a question: the card's buttons go, a fresh card follows once all is given.
            await self.settle_confirm(self.ctx.t("dialog.settled.updated"))
        state.stage = "collect"
        state.awaiting = key
        question = self.question(key, options)
        if skippable:
            question = f"{question}\n{self.ctx.t('dialog.skip_hint')}"
        if not state.hinted:
            state.hinted = True
            question = f"{question}\n{self.ctx.t(self.hint)}"
        self.flush()
        if options:
            ref = self._next_ref("q")
            state.question = OpenCard(ref=ref, title=question)
            self.ctx.reply_card(choice_card(ref, state.token, key, question, options, self.choice_payload))
        else:
            self.ctx.reply(question)
        self.save()

    def offer(self, key: str, options: Sequence[tuple[str, str]]) -> None:
        """Candidates for ``key`` found while parsing (a hospital name that matches several): asked next."""
        self.state.awaiting = key
        self.state.options = [Option(label=label, value=value) for label, value in options]

    async def settle_confirm(self, status: str, rows: Sequence[tuple[str, str]] | None = None) -> None:
        """The confirmation card on screen loses its buttons and shows ``status`` (and ``rows`` when given: what was
        stored, on submit; else the rows as last shown)."""
        open_card = self.state.confirm
        if open_card is None:
            return
        self.state.confirm = None
        rows = [(r[0], r[1]) for r in open_card.rows] if rows is None else list(rows)
        self.ctx.update_card(self.confirm_card(open_card.ref, rows, status=status))

    def finish(self) -> None:
        """The dialog is over and its cards are settled."""
        self.ctx.conversation.settled()
        self.ctx.conversation.clear()

    # ---- storing -------------------------------------------------------------------------------------------------

    def save(self) -> None:
        """Write the state back, with the note of the cards to settle if the dialog is left some other way."""
        data = dump(self.state)
        cards: list[Card] = []
        if self.state.question is not None:
            cards.append(Card(ref=self.state.question.ref, title=self.state.question.title))
        if self.state.confirm is not None:
            rows = [(r[0], r[1]) for r in self.state.confirm.rows]
            cards.append(self.confirm_card(self.state.confirm.ref, rows, status="…"))
        if cards:
            t = self.ctx.t
            data[EXIT_KEY] = {
                "cards": [c.model_dump(mode="json") for c in cards],
                "status": {
                    CANCELLED: t("dialog.settled.cancelled"),
                    EXPIRED: t("dialog.settled.expired"),
                    REPLACED: t("dialog.settled.replaced"),
                },
            }
        self.ctx.conversation.data = data


# ---- the taps of every form's cards, registered once for all forms (``handlers.ROUTERS`` includes this router) ----

router = Router("dialogs")


class DirectFormDialog(FormDialog[S]):
    """A flow without a confirmation card: it asks for what is missing and submits as soon as nothing is (试用,
    学术, 调级); subclasses implement ``submit``."""

    async def rows(self) -> list[tuple[str, str]]:
        return []

    def confirm_card(self, ref: str, rows: Sequence[tuple[str, str]], status: str = "") -> Card:
        return Card(ref=ref, title="", status=status)

    async def advance(self, *, fresh: bool = False) -> None:
        if self.missing() or (self.state.options and self.state.awaiting):
            await super().advance(fresh=fresh)
            return
        await self.submit()


def _tapped_dialog(ctx: Context, tap: DialogChoice | DialogConfirm) -> FormDialog[Any] | None:
    """The running dialog the tapped button belongs to (its form found by the button's payload class); None, and
    the user told the button is stale, when there is none."""
    kind = type(tap)
    form = next((cls for cls in _FLOWS.values() if kind in (cls.choice_payload, cls.confirm_payload)), None)
    dialog = form.for_tap(ctx, tap) if form is not None else None
    if dialog is None:
        ctx.reply(ctx.t("stale_button"))
    return dialog


@router.tap(DialogChoice)
async def choose_value(ctx: Context, tap: DialogChoice) -> None:
    """A choice button on a form's question card: (token, field, value)."""
    if (dialog := _tapped_dialog(ctx, tap)) is not None:
        await dialog.on_choice(tap.field, tap.value)


@router.tap(DialogConfirm)
async def confirm(ctx: Context, tap: DialogConfirm) -> None:
    """提交 / 修改 / 取消 on a form's confirmation card: (token, op)."""
    if (dialog := _tapped_dialog(ctx, tap)) is not None:
        await dialog.on_confirm(tap.op)


__all__ = [
    "EDIT_WORDS",
    "SKIP",
    "SKIP_WORDS",
    "DialogState",
    "FormDialog",
    "classify",
    "escape_edit",
    "in_dialog",
    "leaves_dialog",
    "router",
]
