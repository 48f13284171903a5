package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/store"
)

// Cookie names.
const (
	sessionCookie = "scrmgw_console"
	langCookie    = "scrmgw_lang"
	// signInCookie holds the sign-in form's CSRF token before there is
	// a session (double submit), so no other site can sign a browser in.
	signInCookie = "scrmgw_signin"
)

// CSRFHeader carries the CSRF token on script requests; forms send the
// field csrf_token.
const CSRFHeader = "X-CSRF-Token"

// touchEvery bounds how often a session's last request is written.
const touchEvery = time.Minute

// signedIn is the request's session and the principal its token resolves
// to now.
type signedIn struct {
	row       *store.ConsoleSession
	principal *api.Principal
}

const sessionKey = "scrmgw.console.session"

func sessionOf(ctx *gin.Context) (*signedIn, bool) {
	v, ok := ctx.Get(sessionKey)
	if !ok {
		return nil, false
	}
	return v.(*signedIn), true
}

func principalOf(ctx *gin.Context) *api.Principal {
	s, _ := sessionOf(ctx)
	return s.principal
}

// csp is every console page's Content-Security-Policy (the QR page alone
// lets images come from https:, the channel's).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// headers sets the security headers of every console response.
func (c *Console) headers(ctx *gin.Context) {
	setHeaders(ctx)
	ctx.Next()
}

func setHeaders(ctx *gin.Context) {
	h := ctx.Writer.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if !strings.HasPrefix(ctx.Request.URL.Path, Path+"/static/") {
		h.Set("Cache-Control", "no-store")
	}
}

// secure reports whether cookies must be Secure for the request.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.o.Config.SecureCookies }

// session loads the request's session, or sends the browser to sign in
// (a script request gets 401).
func (c *Console) session(ctx *gin.Context) {
	s, err := c.loadSession(ctx)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !refusedToken(err) {
			c.fail(ctx, err)
			ctx.Abort()
			return
		}
		c.clearCookie(ctx, sessionCookie)
		if scriptRequest(ctx) {
			ctx.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": translate(language(ctx.Request), "signin.expired")})
			return
		}
		// A page comes back after signing in; a form's action does not
		// (its page does, from the list).
		next := Path + "/workflows"
		if ctx.Request.Method == http.MethodGet {
			next = ctx.Request.URL.Path
		}
		ctx.Redirect(http.StatusSeeOther, Path+"/sign-in?next="+url.QueryEscape(next))
		ctx.Abort()
		return
	}
	ctx.Set(sessionKey, s)
	ctx.Next()
}

func (c *Console) loadSession(ctx *gin.Context) (*signedIn, error) {
	ck, err := ctx.Request.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, store.ErrNotFound
	}
	now := c.o.Now()
	row, err := c.o.Store.ConsoleSession(ctx.Request.Context(), store.HashToken(ck.Value), now, now.Add(-c.o.Config.IdleTimeout))
	if err != nil {
		return nil, err
	}
	p, err := c.o.Auth.ResolveHash(ctx.Request.Context(), row.TokenHash)
	if err != nil {
		if refusedToken(err) {
			_ = c.o.Store.DeleteConsoleSession(ctx.Request.Context(), row.ID)
		}
		return nil, err
	}
	if now.Sub(row.SeenAt) >= touchEvery {
		if err := c.o.Store.TouchConsoleSession(ctx.Request.Context(), row.ID, now); err != nil {
			return nil, err
		}
	}
	return &signedIn{row: row, principal: p}, nil
}

// csrf refuses a request without the session's CSRF token.
func (c *Console) csrf(ctx *gin.Context) {
	s, ok := sessionOf(ctx)
	got := ctx.GetHeader(CSRFHeader)
	if got == "" {
		got = ctx.PostForm("csrf_token")
	}
	if !ok || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.row.CSRF)) != 1 {
		ctx.Set(auditNoteKey, "csrf")
		lang := language(ctx.Request)
		if scriptRequest(ctx) {
			ctx.AbortWithStatusJSON(http.StatusForbidden, gin.H{"error": translate(lang, "csrf.text")})
			return
		}
		c.render(ctx, http.StatusForbidden, "message", "csrf.title", "", message{Heading: translate(lang, "csrf.title"), Text: translate(lang, "csrf.text")})
		ctx.Abort()
		return
	}
	ctx.Next()
}

// scriptRequest reports whether the editor's script (not a page or a
// form) made the request: it gets JSON answers.
func scriptRequest(ctx *gin.Context) bool {
	return ctx.GetHeader(CSRFHeader) != "" || strings.HasPrefix(ctx.ContentType(), "application/json")
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

type signInData struct {
	Next  string
	Error string
	// CSRF is the sign-in form's token (the page has no session yet).
	CSRF string
}

func (c *Console) signInPage(ctx *gin.Context) {
	if _, err := c.loadSession(ctx); err == nil {
		ctx.Redirect(http.StatusSeeOther, safeNext(ctx.Query("next")))
		return
	}
	c.signInForm(ctx, http.StatusOK, safeNext(ctx.Query("next")), "")
}

// signInForm renders the sign-in page with a fresh form token.
func (c *Console) signInForm(ctx *gin.Context, status int, next, errText string) {
	tok := randomToken()
	http.SetCookie(ctx.Writer, &http.Cookie{Name: signInCookie, Value: tok, Path: Path + "/sign-in", MaxAge: 3600,
		Secure: c.secure(ctx.Request), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.render(ctx, status, "signin", "signin.title", "", signInData{Next: next, Error: errText, CSRF: tok})
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Path+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Path + "/workflows"
	}
	return next
}

// signIn checks the token and starts a session. The token comes in the
// form body, never the URL.
func (c *Console) signIn(ctx *gin.Context) {
	ctx.Request.Body = http.MaxBytesReader(ctx.Writer, ctx.Request.Body, 64<<10)
	if err := ctx.Request.ParseForm(); tooLarge(ctx, err) {
		return
	}
	token := strings.TrimSpace(ctx.PostForm("token"))
	next := safeNext(ctx.PostForm("next"))
	lang := language(ctx.Request)
	if ck, err := ctx.Request.Cookie(signInCookie); err != nil || ck.Value == "" ||
		subtle.ConstantTimeCompare([]byte(ck.Value), []byte(ctx.PostForm("csrf_token"))) != 1 {
		c.signInForm(ctx, http.StatusForbidden, next, translate(lang, "csrf.text"))
		return
	}
	p, err := c.o.Auth.Resolve(ctx.Request.Context(), token)
	if err != nil {
		if !refusedToken(err) {
			c.fail(ctx, err)
			return
		}
		c.log.InfoContext(ctx.Request.Context(), "console sign-in refused", slog.String("client_ip", ctx.ClientIP()))
		c.signInForm(ctx, http.StatusUnauthorized, next, translate(lang, "signin.bad"))
		return
	}
	now := c.o.Now()
	secret := randomToken()
	row := &store.ConsoleSession{ID: store.HashToken(secret), TokenHash: store.HashToken(token), CSRF: randomToken(),
		CreatedAt: now, SeenAt: now, ExpiresAt: now.Add(c.o.Config.MaxAge)}
	if err := c.o.Store.CreateConsoleSession(ctx.Request.Context(), row); err != nil {
		c.fail(ctx, err)
		return
	}
	if n, err := c.o.Store.DeleteExpiredConsoleSessions(ctx.Request.Context(), now, now.Add(-c.o.Config.IdleTimeout)); err != nil {
		c.log.WarnContext(ctx.Request.Context(), "deleting expired console sessions", slog.Any("error", err))
	} else if n > 0 {
		c.log.DebugContext(ctx.Request.Context(), "expired console sessions deleted", slog.Int64("sessions", n))
	}
	c.log.InfoContext(ctx.Request.Context(), "console sign-in", slog.String("token_name", p.Name), slog.String("brand", p.Brand))
	if next == Path+"/workflows" && !p.Allows(api.ResourceWorkflows) {
		// A token limited to other route groups starts on the first
		// page it may open.
		if items := navFor(p); len(items) > 0 {
			next = Path + items[0].Path
		}
	}
	http.SetCookie(ctx.Writer, &http.Cookie{Name: signInCookie, Value: "", Path: Path + "/sign-in", MaxAge: -1,
		Secure: c.secure(ctx.Request), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.SetCookie(ctx.Writer, &http.Cookie{Name: sessionCookie, Value: secret, Path: Path + "/",
		Expires: row.ExpiresAt, MaxAge: int(c.o.Config.MaxAge / time.Second),
		Secure: c.secure(ctx.Request), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	ctx.Redirect(http.StatusSeeOther, next)
}

func (c *Console) signOut(ctx *gin.Context) {
	s, _ := sessionOf(ctx)
	if err := c.o.Store.DeleteConsoleSession(ctx.Request.Context(), s.row.ID); err != nil {
		c.fail(ctx, err)
		return
	}
	c.clearCookie(ctx, sessionCookie)
	ctx.Redirect(http.StatusSeeOther, Path+"/sign-in")
}

func (c *Console) clearCookie(ctx *gin.Context, name string) {
	http.SetCookie(ctx.Writer, &http.Cookie{Name: name, Value: "", Path: Path + "/", MaxAge: -1,
		Secure: c.secure(ctx.Request), HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// setLanguage remembers the language switch's choice for a year: a link
// (GET /console/language?lang=en&next=...), as it changes nothing but the
// reader's own preference.
func (c *Console) setLanguage(ctx *gin.Context) {
	lang := ctx.Query("lang")
	if _, ok := catalogue[lang]; !ok {
		lang = defaultLang
	}
	http.SetCookie(ctx.Writer, &http.Cookie{Name: langCookie, Value: lang, Path: Path + "/", MaxAge: 365 * 24 * 3600,
		Secure: c.secure(ctx.Request), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	ctx.Redirect(http.StatusSeeOther, safeNext(ctx.Query("next")))
}

// refusedToken reports whether err is the API refusing a token (unknown,
// revoked or expired) rather than failing to look it up.
func refusedToken(err error) bool {
	var expired *api.ExpiredError
	return errors.Is(err, api.ErrBadToken) || errors.As(err, &expired)
}
