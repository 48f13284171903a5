package wecom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work"
	workconfig "github.com/silenceper/wechat/v2/work/config"

	"github.com/scrmgw/scrmgw/adapters"
)

// This file is the core of the WeCom server API layer: the API and how it
// calls WeCom. Access tokens shared through an adapters.TokenCache are in
// tokens.go, the mapping of WeCom errcodes onto the adapters sentinel
// errors in errors.go, and the calls the gateway makes in a file each
// (contacts.go, welcome.go, msgtemplate.go, groupmsg.go, contactway.go,
// transfer.go, kf.go, appmsg.go; attachments in attachments.go).
//
// It is built on github.com/silenceper/wechat/v2 (work). Where the SDK's
// request or response structs are wrong for us, the call goes through the
// SDK's util.PostJSONContext with structs of this package:
//
//   - send_welcome_msg, add_msg_template: the SDK's Attachment has
//     non-pointer sub-structs tagged omitempty, which encoding/json never
//     omits, so every attachment carries empty image, link, miniprogram,
//     video and file objects; AddMsgTemplateRequest always sends an empty
//     tag_filter and "attachments": null.
//   - add_contact_way: the SDK always sends skip_verify (false: WeCom's
//     default is true), empty conclusions and zero expiry fields.
//   - transfer_customer: the SDK always sends transfer_success_msg, ""
//     when unset.
//   - kf/sync_msg, kf/send_msg: the SDK drops the errcode (SyncMsg returns
//     errors.New(errmsg); SendMsg maps known codes to strings), so token
//     refresh and error mapping would be impossible; it also decodes
//     locations as float32.
//
//   - message/send: the SDK sends agentid as a string where WeCom
//     documents an integer, and escapes <, > and & in the body.
//   - media/upload: the SDK's upload takes no context and reads a file
//     from disk; ours posts the fetched bytes (see media.go).
//
// The SDK is used as is for externalcontact/get, get_groupmsg_send_result
// and resigned/transfer_customer.

// apiTimeout bounds every call to WeCom, including the SDK's own calls,
// which take no context.
const apiTimeout = 10 * time.Second

// officialHost is the host the SDK hard-codes in every URL.
const officialHost = "qyapi.weixin.qq.com"

const qyapi = "https://" + officialHost + "/cgi-bin/"

// ErrInvalidRequest means the API refused arguments before calling WeCom
// (an empty text, too many recipients, a malformed msgid): retrying the
// same request will not help. It wraps adapters.ErrInvalidMessage, so the
// outbound queue does not retry it.
var ErrInvalidRequest = fmt.Errorf("invalid wecom request: %w", adapters.ErrInvalidMessage)

// apiTarget is where requests for qyapi.weixin.qq.com go; nil or the
// official host means no rewriting. It is process-wide, like the SDK's
// util.DefaultHTTPClient it serves.
var (
	apiTarget   atomic.Pointer[url.URL]
	installHTTP sync.Once
)

// rewriteTransport sends requests for qyapi.weixin.qq.com to apiTarget. It
// looks the target up per request, so tests can switch fake servers.
type rewriteTransport struct {
	base http.RoundTripper
}

func (t *rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	target := apiTarget.Load()
	if target == nil || req.URL.Host != officialHost || target.Host == officialHost && target.Scheme == "https" && target.Path == "" {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme = target.Scheme
	r.URL.Host = target.Host
	r.URL.Path = strings.TrimRight(target.Path, "/") + req.URL.Path
	r.URL.RawPath = ""
	r.Host = ""
	return t.base.RoundTrip(r)
}

// useAPIBase points the SDK's HTTP client at base. The first call replaces
// util.DefaultHTTPClient (which is http.DefaultClient itself, left
// untouched) with a client of our own; later calls only move the target.
func useAPIBase(base *url.URL) {
	installHTTP.Do(func() {
		var rt http.RoundTripper = http.DefaultTransport
		if t, ok := rt.(*http.Transport); ok {
			rt = t.Clone()
		}
		util.DefaultHTTPClient = &http.Client{
			Transport: &rewriteTransport{base: rt},
			Timeout:   apiTimeout,
		}
	})
	apiTarget.Store(base)
}

// API calls WeCom's server API for one self-built app. It is safe for
// concurrent use.
//
// The SDK sends every request through its package variable
// util.DefaultHTTPClient, so NewAPI replaces that variable, process-wide,
// with a client that has a 10-second timeout and sends requests for
// qyapi.weixin.qq.com to Config.APIBase. Every API of a process therefore
// uses the APIBase of the latest NewAPI: one process talks to one WeCom
// (or one fake of it) at a time.
//
// Access tokens are cached in the TokenCache under a key derived from the
// corp id and a hash of the secret, so every replica shares one token per
// secret. Two secrets are in use: the app Secret for message/send and the
// kf (微信客服) endpoints, the ContactSecret for externalcontact/*; when
// they are equal there is one token. A call refused for its token (40014,
// 42001, 41001, 40001) drops the cached token and is retried once with a
// fresh one; a second refusal is ErrUnauthorized.
//
// Errors wrap *adapters.APIError for WeCom errcodes (see Kind for the
// mapping) and adapters.ErrTemporary for HTTP and network failures. No
// error or log line carries an access token or a secret.
type API struct {
	log     *slog.Logger
	agentID int
	app     *work.Work
	contact *work.Work
	appTok  *tokenSource
	contTok *tokenSource
}

// NewAPI returns an API for cfg (CorpID and Secret are required; AgentID,
// when set, must be an integer). tokens shares access tokens between
// replicas.
func NewAPI(cfg Config, tokens adapters.TokenCache, log *slog.Logger) (*API, error) {
	cfg = cfg.WithDefaults()
	if cfg.CorpID == "" || cfg.Secret == "" {
		return nil, errors.New("creating wecom api: corp id and secret are required")
	}
	if tokens == nil {
		return nil, errors.New("creating wecom api: token cache is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("channel", "wecom")
	var agentID int
	if cfg.AgentID != "" {
		n, err := strconv.Atoi(cfg.AgentID)
		if err != nil {
			return nil, fmt.Errorf("creating wecom api: agent id %q is not an integer", cfg.AgentID)
		}
		agentID = n
	}
	base, err := url.Parse(cfg.APIBase)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("creating wecom api: api base %q is not an http(s) url", cfg.APIBase)
	}
	useAPIBase(base)

	store := &tokenStore{tokens: tokens, log: log}
	a := &API{log: log, agentID: agentID}
	a.appTok = newTokenSource(cfg.CorpID, cfg.Secret, "app", store, log)
	a.app = newWork(cfg, cfg.Secret, store, a.appTok)
	if cfg.ContactSecret == cfg.Secret {
		a.contTok, a.contact = a.appTok, a.app
	} else {
		a.contTok = newTokenSource(cfg.CorpID, cfg.ContactSecret, "contact", store, log)
		a.contact = newWork(cfg, cfg.ContactSecret, store, a.contTok)
	}
	return a, nil
}

// newWork builds the SDK's client for one secret, with our token source in
// place of the SDK's (which takes no context and whose errors carry the
// secret in the URL).
func newWork(cfg Config, secret string, store cache.Cache, src *tokenSource) *work.Work {
	wk := work.NewWork(&workconfig.Config{
		CorpID:     cfg.CorpID,
		CorpSecret: secret,
		AgentID:    cfg.AgentID,
		Cache:      store,
	})
	wk.GetContext().AccessTokenHandle = src
	return wk
}

// ---- calling ----

// do runs one call with a token of src, retrying it once with a fresh
// token when WeCom refuses the token. fn gets the token to use; calls made
// through the SDK ignore it (the SDK asks src itself, and gets the same
// cached token).
func (a *API) do(ctx context.Context, src *tokenSource, op string, fn func(token string) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		token, err := src.GetAccessTokenContext(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		start := time.Now()
		err = fn(token)
		if err == nil {
			a.log.Debug("wecom call", slog.String("op", op), slog.Duration("took", time.Since(start)))
			return nil
		}
		err = classify(err)
		if te, ok := err.(*transportError); ok && !te.refused {
			te.inDoubt = true
		}
		var apiErr *adapters.APIError
		if errors.As(err, &apiErr) && tokenCodes[apiErr.Code] {
			src.invalidate(ctx, token)
			if attempt == 0 {
				continue
			}
		}
		a.log.Debug("wecom call failed", slog.String("op", op), slog.Duration("took", time.Since(start)), slog.Any("error", err))
		return fmt.Errorf("%s: %w", op, err)
	}
}

// post calls a WeCom endpoint through the SDK's util.PostJSONContext with
// our own request and response structs; out must embed util.CommonError.
func (a *API) post(ctx context.Context, src *tokenSource, op, path string, in, out any) error {
	return a.do(ctx, src, op, func(token string) error {
		body, err := util.PostJSONContext(ctx, qyapi+path+"?access_token="+url.QueryEscape(token), in)
		if err != nil {
			return err
		}
		return util.DecodeWithError(body, out, path)
	})
}

func invalidRequest(op, format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", op, ErrInvalidRequest, fmt.Sprintf(format, args...))
}

func noRecipient(op, what string) error {
	return fmt.Errorf("%s: %w: no %s", op, adapters.ErrInvalidRecipient, what)
}

// checkIDs rejects empty ids and ids with "|", which WeCom uses as a list
// separator.
func checkIDs(op, what string, ids []string, limit int) error {
	if len(ids) == 0 {
		return noRecipient(op, what)
	}
	if len(ids) > limit {
		return invalidRequest(op, "%d %s, at most %d", len(ids), what, limit)
	}
	for _, id := range ids {
		if id == "" || strings.Contains(id, "|") {
			return invalidRequest(op, "%s %q is not a valid id", what, id)
		}
	}
	return nil
}
