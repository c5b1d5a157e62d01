"""The visual editor: one variant's changes, made by pointing at the site in an iframe.

The page frames the site (its URL, or another page of its domain) with ``segmently_editor=1``;
the snippet there answers ``static/editor.js`` through ``postMessage`` (selection, match counts,
previews). Every form posts the whole list the page shows (JSON in ``changes``), the version it
was rendered with and, for "Add change" and "Remove", what to add or drop; the list is saved
through ``experiments.services.update`` like the API's ``PATCH`` with ``If-Match``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, Parameter
from litestar.response import Redirect, Template

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.forms import form_values, humanise, if_match
from segmently.dashboard.frame import page, redirect, static_url
from segmently.db.models import Experiment, Site, Variant
from segmently.domain.accounts.auth import Actor
from segmently.domain.experiments import schemas
from segmently.domain.experiments import services as experiments
from segmently.domain.sites.services import get_site
from segmently.http.deps import CurrentActor, DbSession, KernelState
from segmently.http.errors import field_error, from_msgspec
from segmently.http.idempotency import PreconditionFailed
from segmently.http.protection import DEFAULT_CSP
from segmently.kernel import Kernel

FIELDS = ("action", "remove", "variant", "version", "url", "changes", "custom_css", "custom_js")
ADD_FIELDS = ("kind", "selector", "value")
KINDS = {
    "text": "Replace text",
    "html": "Replace HTML",
    "css": "CSS declarations",
    "hide": "Hide",
    "remove": "Remove from the page",
    "js": "JavaScript",
}
"""What "Add change" offers: each change type of the API (a hide change in both of its modes)."""
VALUE_KEYS = {"text": "text", "html": "html", "css": "css", "js": "code"}
NOTICES = {
    "saved": "Changes saved.",
    "added": "Change added and saved.",
    "removed": "Change removed and saved.",
}
DONE = {"save": "saved", "add": "added", "remove": "removed"}
"""The notice after each action of the form."""
FIELD_NAMES = {
    "selector": "Selector",
    "text": "Text",
    "html": "HTML",
    "css": "CSS",
    "code": "Code",
    "custom_css": "Custom CSS",
    "custom_js": "Custom JavaScript",
}
EDITOR_PARAM = "segmently_editor"


def change_of(kind: str, selector: str, value: str) -> dict[str, Any]:
    """The API's change (``HideChange``, ``TextChange`` …) for the "Add change" fields."""
    if kind in ("hide", "remove"):
        return {"type": "hide", "selector": selector, "mode": kind}
    if kind == "js":
        return {"type": "js", "code": value}
    if kind == "css" and not selector:
        return {"type": "css", "css": value}
    return {"type": kind, "selector": selector, VALUE_KEYS.get(kind, "text"): value}


def describe(change: dict[str, Any]) -> tuple[str, str, str]:
    """How the list shows a change: its kind, its selector, its value."""
    kind = str(change.get("type", ""))
    if kind == "hide":
        return ("Remove" if change.get("mode") == "remove" else "Hide"), change.get("selector") or "", ""
    label = {"text": "Text", "html": "HTML", "css": "CSS", "js": "JavaScript"}.get(kind, kind)
    return label, change.get("selector") or "", str(change.get(VALUE_KEYS.get(kind, "text"), ""))


def host_of(url: str) -> str:
    """The host name of a URL, lower case ("" when it has none)."""
    return (urlsplit(url).hostname or "").lower()


def domains_of(site: Site, experiment: Experiment) -> list[str]:
    """The hosts whose pages the editor opens.

    The site's domain first (``www.`` dropped; its subdomains too), then the experiment's
    cross-domain hosts.
    """
    cross = [host_of(h if "//" in h else f"//{h}") for h in experiment.advanced.get("cross_domain", [])]
    return [host_of(site.url).removeprefix("www."), *[h for h in cross if h]]


def page_problem(url: str, site: Site, experiment: Experiment) -> str | None:
    """What is wrong with ``url`` as the page to edit: it must be http(s) on the site's domain."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be a web address starting with http:// or https://"
    host = parts.hostname.lower()
    domain, *others = domains_of(site, experiment)
    if host == domain or host.endswith("." + domain) or host in others:
        return None
    return f"must be on {domain} (the site's domain)"


def editor_src(url: str) -> str:
    """``url`` with ``segmently_editor=1`` in its query (the snippet's editor mode)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != EDITOR_PARAM]
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode([*query, (EDITOR_PARAM, "1")])))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def editor_path(experiment_id: str, variant: str, url: str, site: Site, notice: str | None = None) -> str:
    """The editor's address for a variant (the page's URL only when it is not the site's)."""
    query = [("variant", variant)]
    if url and url != site.url:
        query.append(("url", url))
    if notice:
        query.append(("notice", notice))
    return f"/experiments/{quote(experiment_id)}/editor?{urlencode(query)}"


def stored(variant: Variant) -> tuple[list[dict[str, Any]], str, str]:
    """A variant's changes, custom CSS and custom JavaScript as saved."""
    data = variant.changes or {}
    return list(data.get("changes", [])), str(data.get("custom_css", "")), str(data.get("custom_js", ""))


def same(one: tuple[list[Any], str, str], other: tuple[list[Any], str, str]) -> bool:
    """Whether two (changes, custom CSS, custom JavaScript) say the same (defaults written out or not)."""

    def norm(changes: list[Any]) -> Any:
        return msgspec.to_builtins(msgspec.convert(changes, list[schemas.Change]))

    return one[1:] == other[1:] and norm(one[0]) == norm(other[0])


def variant_named(variants: list[Variant], key: str | None) -> Variant:
    """The variant with ``key``; without a key the first one that is not the control."""
    if not key:
        return next((v for v in variants if v.key != "control"), variants[0])
    found = next((v for v in variants if v.key == key), None)
    if found is None:
        raise NotFoundException("No such variant")
    return found


def field_of(path: str, position: int) -> tuple[str, int | None, str]:
    """Where an API error on ``variants[position]…`` belongs: (form field, change index, its key)."""
    prefix = f"variants[{position}]."
    if not path.startswith(prefix):
        return "", None, path
    rest = path[len(prefix) :]
    if rest.startswith("changes["):
        index, _, key = rest[len("changes[") :].partition("]")
        return "changes", int(index) if index.isdigit() else None, key.lstrip(".")
    return rest, None, rest


def message_of(key: str, message: str) -> str:
    """``Selector is required`` from the key of the error and msgspec's words."""
    words = humanise(key, message)
    name = FIELD_NAMES.get(key.split(".")[-1], "")
    return f"{name} {words}" if name and words[:1].islower() else words[:1].upper() + words[1:]


class EditorPages(Controller):
    """``/experiments/{id}/editor``: the page and the post that saves a variant's changes."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    async def _show(
        self,
        request: Request[Any, Any, Any],
        actor: Actor,
        db_session: DbSession,
        kernel: Kernel,
        experiment: Experiment,
        site: Site,
        variant_key: str | None,
        url: str | None,
        *,
        status_code: int = 200,
        notice: str | None = None,
        problem: str | None = None,
        posted: tuple[list[dict[str, Any]], str, str] | None = None,
        errors: dict[str, str] | None = None,
        row_errors: dict[int, list[str]] | None = None,
        add: dict[str, str] | None = None,
        unsaved: str | None = None,
    ) -> Template:
        errors = dict(errors or {})
        variants = await experiments.variants_of(db_session, experiment.id)
        mvt = experiment.kind == "mvt"
        variant = None if mvt or not variants else variant_named(variants, variant_key)
        target = url or site.url
        if (url_problem := page_problem(target, site, experiment)) is not None:
            errors.setdefault("url", f"Page to edit {url_problem}")
            status_code = 400 if status_code == 200 else status_code
            target = site.url
        changes, custom_css, custom_js = posted or (stored(variant) if variant else ([], "", ""))
        editable = experiment.status in experiments.EDITABLE and not mvt
        frame_src = editor_src(target)
        frames = " ".join(sorted({origin_of(frame_src), origin_of(site.url)}))
        template = await page(
            request,
            "editor.html",
            actor,
            db_session,
            kernel,
            "sites",
            status_code=status_code,
            experiment=experiment,
            site=site,
            variants=variants,
            variant=variant,
            mvt=mvt,
            url=target,
            url_value=url if url is not None else target,
            frame_src=frame_src,
            editable=editable,
            changes=[
                (describe(c), row_errors.get(i, []) if row_errors else []) for i, c in enumerate(changes)
            ],
            changes_json=msgspec.json.encode(changes).decode(),
            custom_css=custom_css,
            custom_js=custom_js,
            kinds=KINDS,
            add={"kind": "text", "selector": "", "value": "", **(add or {})},
            errors=errors,
            notice=notice,
            problem=problem,
            unsaved=unsaved,
            data={
                "changes": changes,
                "errors": {str(k): v for k, v in (row_errors or {}).items()},
                "editable": editable,
                "domains": domains_of(site, experiment),
            },
            editor_js=static_url("editor.js"),
            editor_css=static_url("editor.css"),
        )
        # the page frames the site: the default policy's ``default-src 'self'`` would refuse it
        template.headers["Content-Security-Policy"] = f"{DEFAULT_CSP}; frame-src {frames}"
        return template

    @get("/experiments/{experiment_id:str}/editor", name="dashboard:editor")
    async def show_editor(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
        variant: Annotated[str | None, Parameter(required=False)] = None,
        url: Annotated[str | None, Parameter(required=False)] = None,
        notice: Annotated[str | None, Parameter(required=False)] = None,
    ) -> Template:
        """The site in an iframe, a variant's changes beside it (another organization's: 404)."""
        experiment = await experiments.get(db_session, actor, experiment_id)
        site = await get_site(db_session, actor, experiment.site_id)
        return await self._show(
            request,
            actor,
            db_session,
            kernel,
            experiment,
            site,
            variant,
            url,
            notice=NOTICES.get(notice or ""),
        )

    @post("/experiments/{experiment_id:str}/editor")
    async def save_changes(
        self,
        request: Request[Any, Any, Any],
        experiment_id: FromPath[str],
        actor: CurrentActor,
        db_session: DbSession,
        kernel: KernelState,
    ) -> Template | Redirect:
        """Save a variant's changes: the list the page showed, with a change added or one removed.

        The form carries the version it was rendered with: a change made meanwhile gets the API's
        412 and nothing is overwritten (unless the stored changes already are the posted ones: a
        double-submitted form).
        """
        experiment = await experiments.get(db_session, actor, experiment_id)
        site = await get_site(db_session, actor, experiment.site_id)
        form = await form_values(request, FIELDS + ADD_FIELDS)
        variants = await experiments.variants_of(db_session, experiment.id)
        if experiment.kind == "mvt" or not variants:
            raise field_error("variants", "a multivariate test's cells come from its sections")
        variant = variant_named(variants, form["variant"] or None)
        key, position, url = variant.key, variants.index(variant), form["url"]
        add = {name: form[name] for name in ADD_FIELDS}

        async def again(status_code: int, **context: Any) -> Template:
            """The page once more, with what went wrong (``experiment`` and ``site`` as last read)."""
            return await self._show(
                request,
                actor,
                db_session,
                kernel,
                experiment,
                site,
                key,
                url or None,
                status_code=status_code,
                **context,
            )

        try:
            listed = msgspec.json.decode(form["changes"] or "[]")
        except msgspec.DecodeError:
            listed = None
        if not isinstance(listed, list):
            return await again(
                400,
                problem="The list of changes could not be read: reload the page and try again.",
            )
        action = "remove" if form["remove"] else form["action"] or "save"
        changes: list[Any] = list(listed)
        if action == "add":
            if add["kind"] not in KINDS:
                return await again(
                    400,
                    posted=(changes, form["custom_css"], form["custom_js"]),
                    add=add,
                    errors={"kind": "Choose what the change does"},
                )
            changes.append(change_of(add["kind"], add["selector"].strip(), add["value"]))
        elif action == "remove":
            index = int(form["remove"]) if form["remove"].isdigit() else -1
            if not 0 <= index < len(changes):
                raise NotFoundException("No such change")
            del changes[index]
        wanted = (changes, form["custom_css"], form["custom_js"])
        config = experiments.config_of(experiment, variants)
        data: list[dict[str, Any]] = [msgspec.to_builtins(v) for v in config.variants]
        data[position] = {
            **data[position],
            "changes": changes,
            "custom_css": wanted[1],
            "custom_js": wanted[2],
        }
        version = form["version"]
        try:
            patch = msgspec.convert({"variants": data}, schemas.ExperimentPatch)
            await experiments.update(db_session, kernel, actor, experiment, patch, if_match(version))
        except msgspec.ValidationError as exc:
            failure: HTTPException = from_msgspec(exc)
        except PreconditionFailed as exc:
            await db_session.rollback()
            experiment = await experiments.get(db_session, actor, experiment_id)
            site = await get_site(db_session, actor, experiment.site_id)
            current = variant_named(await experiments.variants_of(db_session, experiment.id), key)
            if same(stored(current), wanted):  # the same form posted twice: the first one saved it
                return redirect(editor_path(experiment.id, key, url, site, DONE[action]))
            return await again(
                412,
                problem=exc.detail,
                unsaved=msgspec.json.encode(wanted[0]).decode(),
            )
        except HTTPException as exc:
            if exc.status_code not in (400, 409):
                raise
            failure = exc
        else:
            return redirect(editor_path(experiment.id, key, url, site, DONE[action]))
        await db_session.rollback()
        experiment = await experiments.get(db_session, actor, experiment_id)
        site = await get_site(db_session, actor, experiment.site_id)
        if failure.status_code == 409:
            return await again(
                409,
                problem=failure.detail,
                unsaved=msgspec.json.encode(wanted[0]).decode(),
            )
        errors, row_errors, problem = self._place(failure, position, action, len(listed))
        return await again(
            400,
            posted=(listed, *wanted[1:]) if action == "add" else wanted,
            add=add if action == "add" else None,
            errors=errors,
            row_errors=row_errors,
            problem=problem,
        )

    @staticmethod
    def _place(
        failure: HTTPException, position: int, action: str, added_at: int
    ) -> tuple[dict[str, str], dict[int, list[str]], str | None]:
        """The API's field errors by where the page shows them: a form field, a change's row, the top."""
        errors: dict[str, str] = {}
        rows: dict[int, list[str]] = {}
        others: list[str] = []
        items = failure.extra if isinstance(failure.extra, list) else []
        for item in items:
            if not (isinstance(item, dict) and "key" in item and "message" in item):
                continue
            field, index, key = field_of(str(item["key"]), position)
            message = message_of(key, str(item["message"]))
            if field == "changes" and index is not None and action == "add" and index == added_at:
                errors[
                    "selector" if key == "selector" else "kind" if key in ("type", "mode") else "value"
                ] = message
            elif field == "changes" and index is not None:
                rows.setdefault(index, []).append(message)
            elif field in ("custom_css", "custom_js"):
                errors[field] = message_of(field, str(item["message"]))
            else:
                others.append(f"{item['key']}: {item['message']}")
        problem = "; ".join(others) or (None if errors or rows else failure.detail)
        return errors, rows, problem
