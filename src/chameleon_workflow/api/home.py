"""A small server-rendered overview page: templates, instances and their queues."""

from __future__ import annotations

from html import escape

from ..engine.core import Engine

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
    "table{border-collapse:collapse;margin-bottom:1.5rem}"
    "td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}"
    "th{background:#f3f3f3}code{background:#f3f3f3;padding:0 .2rem}"
)


_SIGN_IN = (
    "<h2>Sign in with an API key</h2>"
    "<p>Every API call needs a key, sent as <code>Authorization: Bearer &lt;key&gt;</code>. "
    "<code>make run</code> made a local admin key in <code>chameleon.admin-key</code> beside "
    "the database; make others with <code>chameleon keys create --scope viewer</code>. "
    "On the <a href='/docs'>API page</a>, press <em>Authorize</em>, paste the key, and try "
    "any call; or from a shell:</p>"
    '<pre>curl -H "Authorization: Bearer $(cat chameleon.admin-key)" '
    "http://127.0.0.1:8000/instances</pre>"
    "<p>This page lists templates and instances only when the server runs without keys "
    "(<code>chameleon serve --insecure-no-auth</code>, loopback only).</p>"
)


def render(engine: Engine, *, overview: bool) -> str:
    """The page: with ``overview`` (keys are off) templates, instances and queues; without,
    only how to sign in, since the page answers anyone."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Chameleon</title>"
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Chameleon workflow engine</h1>",
        "<p>API reference: <a href='/docs'>/docs</a> "
        "(OpenAPI: <a href='/openapi.json'>/openapi.json</a>).</p>",
    ]
    if not overview:
        parts.append(_SIGN_IN + "</body></html>")
        return "".join(parts)
    parts += [
        f"<p>Database: <code>{escape(engine.db.dialect)}</code>.</p>",
        "<h2>Templates</h2><table><tr><th>name</th><th>version</th><th>id</th><th>export</th></tr>",
    ]
    for t in engine.templates.list():
        parts.append(
            f"<tr><td>{escape(t.name)}</td><td>{t.version}</td><td><code>{t.id}</code></td>"
            f"<td><a href='/templates/{t.id}/yaml'>yaml</a> · "
            f"<a href='/templates/{t.id}/graph'>dot</a></td></tr>"
        )
    parts.append("</table><h2>Instances</h2>")
    for inst in engine.instances.list()[-20:]:
        d = engine.instances.describe(inst.id)
        parts.append(
            f"<h3>{escape(inst.name)} <small><code>{inst.id}</code></small></h3>"
            "<table><tr><th>interaction</th><th>work by status</th><th>read by</th>"
            "<th>written by</th></tr>"
        )
        for x in d["interactions"]:
            depth = ", ".join(f"{k}: {v}" for k, v in sorted(x["depth"].items())) or "empty"
            readers, writers = (", ".join(r.name for r in x[k]) for k in ("read_by", "written_by"))
            parts.append(
                f"<tr><td>{escape(x['interaction'].name)}</td><td>{escape(depth)}</td>"
                f"<td>{escape(readers or 'nobody')}</td><td>{escape(writers or 'nobody')}</td></tr>"
            )
        parts.append("</table><table><tr><th>role</th><th>type</th><th>role id</th></tr>")
        for r in d["roles"]:
            parts.append(
                f"<tr><td>{escape(r.name)}</td><td>{r.role_type}</td><td><code>{r.id}</code></td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)
