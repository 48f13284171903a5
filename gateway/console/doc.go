// Package console is scrmgw's web console at /console/: server-rendered
// pages (html/template) for marketers, store managers and operators, with
// one small hand-written script (static/editor.js) for the workflow
// editor's validation as you type. Everything is embedded in the binary;
// nothing is built with Node.js.
//
// The pages: workflows (list, editor, diagram, dry run, versions, diff),
// the funnel, guides and their tasks, members (search, a member's page,
// export, erasure), stores (map, nearest-store probe, QR codes), commerce
// (settlements, coupon redemptions, event sources) and, for the admin,
// operations (queues, backlogs, failed sends, the audit trail). Lists page
// by a keyset with a next link; none is cut off silently.
//
// Every page reads and writes through the same code as the admin API: the
// store's methods, the workflow engine (api.Workflows), the workflows
// loader with the options `scrmgw workflow validate` uses, and the engine's
// dry run. A brand token sees only its brand, exactly as in the API: the
// console resolves the token signed in with through api.Server on every
// request.
//
// Sessions: signing in with a token (admin or brand) creates a
// store.ConsoleSession with a random id; the cookie carries the id
// (Secure when served over TLS or when console.public_url is https,
// HttpOnly, SameSite=Strict). Sessions end after console.idle_timeout
// without a request and at console.max_age in any case. Every non-GET
// request must carry the session's CSRF token, in the form field
// csrf_token or the X-CSRF-Token header. Every response carries a strict
// Content-Security-Policy (no inline script or style), X-Frame-Options
// DENY and no-referrer.
//
// Scopes: a read-only token sees the pages but not their write buttons,
// and its writes answer 403; a token limited to some route groups
// (api.Resource*) sees only their pages. Every write is in the audit
// trail, as the API's are (api.EntryFor, with the console's route).
//
// Languages: Chinese and English, chosen from Accept-Language and
// switchable (a cookie remembers the choice). Every string a page shows
// comes from the catalogue in messages.go.
//
// Adding a page:
//
//  1. templates/NAME.html defines {{define "content"}} (the layout gives
//     it .T for strings, .Principal, .CSRF for forms and .Data);
//  2. a handler that loads what the page shows through the store or the
//     engine (with ctx.Request.Context(): gin reuses its Context) and calls
//     c.render(ctx, status, "NAME", titleKey, navPath, data); a :brand in
//     the path goes through c.brandParam, which answers 404 to another
//     brand's token;
//  3. one line in Mount: in pages (GET, signed in) with
//     c.requires(api.ResourceX, false) naming the API route group the
//     page belongs to (a token limited to other groups gets 403), or in
//     writes with c.write(api.ResourceX, handler) (CSRF-checked, refused
//     to read-only tokens, recorded in the audit trail);
//  4. an entry in navItems when the page belongs in the top bar (Admin
//     for a page only the admin token may open, which also goes through
//     c.adminOnly);
//  5. its strings in messages.go, in both languages (a test checks it).
package console
