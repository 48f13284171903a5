package wecom

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/util"
	"github.com/silenceper/wechat/v2/work"
	workconfig "github.com/silenceper/wechat/v2/work/config"
	"github.com/silenceper/wechat/v2/work/externalcontact"

	"github.com/scrmgw/scrmgw/adapters"
)

// This file is the WeCom server API layer: access tokens shared through an
// adapters.TokenCache, the calls the gateway makes, and the mapping of
// WeCom errcodes onto the adapters sentinel errors.
//
// It is built on github.com/silenceper/wechat/v2 (work). Where the SDK's
// request or response structs are wrong for us, the call goes through the
// SDK's util.PostJSONContext with structs of this file:
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

// ---- access tokens ----

// tokenStore is the SDK's cache.Cache over an adapters.TokenCache. Cache
// failures are logged and read as a miss: a token can always be fetched
// again.
type tokenStore struct {
	tokens adapters.TokenCache
	log    *slog.Logger
}

var _ cache.ContextCache = (*tokenStore)(nil)

func (s *tokenStore) Get(key string) any {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.GetContext(ctx, key)
}

func (s *tokenStore) GetContext(ctx context.Context, key string) any {
	v, err := s.tokens.Get(ctx, key)
	if err != nil {
		s.log.Warn("reading wecom access token from cache", slog.Any("error", err))
		return nil
	}
	if v == "" {
		return nil
	}
	return v
}

func (s *tokenStore) Set(key string, val any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.SetContext(ctx, key, val, timeout)
}

func (s *tokenStore) SetContext(ctx context.Context, key string, val any, timeout time.Duration) error {
	v, ok := val.(string)
	if !ok {
		return fmt.Errorf("caching wecom access token: value is %T, not a string", val)
	}
	return s.tokens.Set(ctx, key, v, timeout)
}

func (s *tokenStore) IsExist(key string) bool { return s.Get(key) != nil }

func (s *tokenStore) IsExistContext(ctx context.Context, key string) bool {
	return s.GetContext(ctx, key) != nil
}

func (s *tokenStore) Delete(key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return s.DeleteContext(ctx, key)
}

func (s *tokenStore) DeleteContext(ctx context.Context, key string) error {
	return s.tokens.Delete(ctx, key)
}

// tokenSource fetches and caches the access token of one secret. It
// implements the SDK's credential.AccessTokenContextHandle, so the SDK's
// own calls use it too.
type tokenSource struct {
	corpID string
	secret string
	scope  string
	key    string
	store  *tokenStore
	log    *slog.Logger
	mu     sync.Mutex // one gettoken at a time per process and secret
}

var _ credential.AccessTokenContextHandle = (*tokenSource)(nil)

func newTokenSource(corpID, secret, scope string, store *tokenStore, log *slog.Logger) *tokenSource {
	sum := sha256.Sum256([]byte(secret))
	return &tokenSource{
		corpID: corpID,
		secret: secret,
		scope:  scope,
		// The hash tells secrets apart (and a rotated secret from the old
		// one) without putting the secret in Redis.
		key:   "wecom:access_token:" + corpID + ":" + hex.EncodeToString(sum[:6]),
		store: store,
		log:   log,
	}
}

// tokenExpiryMargin is how long before WeCom's expiry a cached token is
// dropped.
const tokenExpiryMargin = 10 * time.Minute

// GetAccessToken is the SDK's entry point; the SDK's calls take no context.
func (t *tokenSource) GetAccessToken() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
	defer cancel()
	return t.GetAccessTokenContext(ctx)
}

// GetAccessTokenContext returns the cached token, or fetches one with
// gettoken and caches it.
func (t *tokenSource) GetAccessTokenContext(ctx context.Context) (string, error) {
	if v, ok := t.store.GetContext(ctx, t.key).(string); ok {
		return v, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.store.GetContext(ctx, t.key).(string); ok {
		return v, nil
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", err)
	}
	body, err := util.HTTPGetContext(ctx, qyapi+"gettoken?corpid="+url.QueryEscape(t.corpID)+"&corpsecret="+url.QueryEscape(t.secret))
	if err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", classify(err))
	}
	var res credential.ResAccessToken
	if err := json.Unmarshal(body, &res); err != nil {
		return "", fmt.Errorf("getting wecom access token: %w", unreadable(err))
	}
	if res.ErrCode != 0 {
		return "", fmt.Errorf("getting wecom access token: %w", newAPIError(res.ErrCode, res.ErrMsg))
	}
	if res.AccessToken == "" {
		return "", fmt.Errorf("getting wecom access token: %w", unreadable(errors.New("no access_token in the answer")))
	}
	ttl := time.Duration(res.ExpiresIn)*time.Second - tokenExpiryMargin
	if ttl < time.Minute {
		ttl = time.Minute
	}
	if err := t.store.SetContext(ctx, t.key, res.AccessToken, ttl); err != nil {
		t.log.Warn("caching wecom access token", slog.String("scope", t.scope), slog.Any("error", err))
	}
	t.log.Info("wecom access token fetched", slog.String("scope", t.scope), slog.Int64("expires_in", res.ExpiresIn))
	return res.AccessToken, nil
}

// invalidate drops the cached token after WeCom refused refused, unless
// another replica has already replaced it.
func (t *tokenSource) invalidate(ctx context.Context, refused string) {
	if cur, ok := t.store.GetContext(ctx, t.key).(string); ok && cur != refused {
		return
	}
	if err := t.store.DeleteContext(ctx, t.key); err != nil {
		t.log.Warn("dropping refused wecom access token", slog.String("scope", t.scope), slog.Any("error", err))
		return
	}
	t.log.Info("wecom access token refused; dropped", slog.String("scope", t.scope))
}

// ---- errors ----

// tokenCodes are the errcodes that say the access token was refused: the
// call is retried once with a fresh token.
var tokenCodes = map[int]bool{
	40014: true, // 不合法的access_token
	42001: true, // access_token已过期
	41001: true, // 缺少access_token参数
	40001: true, // 不合法的secret参数 (gettoken); "invalid credential" elsewhere
}

// codeKinds maps WeCom errcodes onto the adapters sentinels. Codes not
// listed map to a nil Kind: a request WeCom will refuse again, not worth a
// retry. Descriptions are from WeCom's 全局错误码 page (document 90313) and
// the endpoint pages cited.
var codeKinds = map[int]error{
	// System busy, retry (建议重试次数不超过3次).
	-1: adapters.ErrTemporary,
	// 数据版本冲突: several callers changed the data at once, retry later.
	6000: adapters.ErrTemporary,
	// 群发消息正在被派发中，请稍后再试 (a result asked for right after
	// add_msg_template).
	41063: adapters.ErrTemporary,
	// welcome msg is being distributed: another app of the corp is sending
	// the welcome now; it may still fail, so retrying is allowed
	// (send_welcome_msg, document 92137).
	41096: adapters.ErrTemporary,

	// Token and credential refusals. 40014, 42001, 41001 and 40001 are
	// retried once with a new token first.
	40014:  adapters.ErrUnauthorized, // 不合法的access_token
	42001:  adapters.ErrUnauthorized, // access_token已过期
	41001:  adapters.ErrUnauthorized, // 缺少access_token参数
	40001:  adapters.ErrUnauthorized, // 不合法的secret参数
	40013:  adapters.ErrUnauthorized, // 不合法的CorpID
	40091:  adapters.ErrUnauthorized, // secret不合法 (another corp's secret)
	41004:  adapters.ErrUnauthorized, // 缺少secret参数
	48002:  adapters.ErrUnauthorized, // API接口无权限调用 (app not allowed to call it)
	60020:  adapters.ErrUnauthorized, // 访问ip不在白名单之中
	301002: adapters.ErrUnauthorized, // 无权限操作指定的应用 (token of another agent)

	// Frequency limits: back off and retry.
	45009: adapters.ErrRateLimited, // 接口调用超过限制
	45033: adapters.ErrRateLimited, // 接口并发调用超过限制
	45011: adapters.ErrRateLimited, // api minute-quota reach limit (WeChat platform code)
	45035: adapters.ErrRateLimited, // named in issue 3; not in the 90313 list we could read

	// The recipient (or the guide reaching them) cannot be reached:
	// retrying will not help.
	40003:  adapters.ErrInvalidRecipient, // 无效的UserID
	40031:  adapters.ErrInvalidRecipient, // 不合法的UserID列表
	40096:  adapters.ErrInvalidRecipient, // 不合法的外部联系人userid
	40098:  adapters.ErrInvalidRecipient, // 成员尚未实名认证
	40099:  adapters.ErrInvalidRecipient, // 外部联系人的数量已达上限
	41048:  adapters.ErrInvalidRecipient, // 无可发送的客户
	41050:  adapters.ErrInvalidRecipient, // 无效的欢迎语code (20 seconds, used once)
	41051:  adapters.ErrInvalidRecipient, // 客户和服务人员已经开始聊天了 (welcome already delivered)
	41053:  adapters.ErrInvalidRecipient, // 客户未同意聊天存档
	41054:  adapters.ErrInvalidRecipient, // 该用户尚未激活
	41056:  adapters.ErrInvalidRecipient, // 外部联系人id类型不正确
	46004:  adapters.ErrInvalidRecipient, // 指定的用户不存在
	50002:  adapters.ErrInvalidRecipient, // 成员不在权限范围
	60011:  adapters.ErrInvalidRecipient, // 指定的成员/部门/标签参数无权限
	60021:  adapters.ErrInvalidRecipient, // userid不在应用可见范围内
	60111:  adapters.ErrInvalidRecipient, // UserID不存在
	81013:  adapters.ErrInvalidRecipient, // UserID、部门ID、标签ID全部非法或无权限
	84061:  adapters.ErrInvalidRecipient, // 不存在外部联系人的关系
	84074:  adapters.ErrInvalidRecipient, // 没有外部联系人权限
	92000:  adapters.ErrInvalidRecipient, // 成员不在应用可见范围之内
	95018:  adapters.ErrInvalidRecipient, // send msg session status invalid (kf: no open session, 48h / 5 messages)
	610004: adapters.ErrInvalidRecipient, // userid不在客户联系配置的使用范围内

	// The message cannot be sent as it is: retrying will not help.
	40004: adapters.ErrInvalidMessage, // 不合法的媒体文件类型 (media/upload)
	40005: adapters.ErrInvalidMessage, // 不合法的文件类型 (media/upload: not a JPG or PNG image)
	40006: adapters.ErrInvalidMessage, // 不合法的文件大小 (media/upload)
	40007: adapters.ErrInvalidMessage, // 不合法的媒体文件id (unknown, or expired after 3 days)
	40009: adapters.ErrInvalidMessage, // 图片文件大小不合法 (media/upload: over 10 MB)
	41005: adapters.ErrInvalidMessage, // 缺少多媒体文件数据 (media/upload)
}

// Kind returns the sentinel a WeCom errcode maps onto, or nil.
func Kind(code int) error { return codeKinds[code] }

// WelcomeAlreadySent reports whether err is WeCom's 41051 on
// send_welcome_msg: the welcome was already delivered (by an earlier try,
// or by another app), so there is nothing left to do.
func WelcomeAlreadySent(err error) bool {
	var e *adapters.APIError
	return errors.As(err, &e) && e.Code == 41051
}

func newAPIError(code int64, msg string) *adapters.APIError {
	return &adapters.APIError{Channel: "wecom", Code: int(code), Message: redact(msg), Kind: codeKinds[int(code)]}
}

// transportError is a failed HTTP exchange with WeCom, its text stripped
// of access tokens and secrets.
type transportError struct {
	msg     string
	status  int
	timeout bool
	ctxErr  error
	// refused: the connection was refused, so nothing was sent.
	refused bool
	// inDoubt: the call itself failed this way after its request may
	// have reached WeCom (see InDoubt).
	inDoubt bool
}

func (e *transportError) Error() string { return "wecom request failed: " + e.msg }

func (e *transportError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{adapters.ErrTemporary, e.ctxErr}
	}
	return []error{adapters.ErrTemporary}
}

// InDoubt reports whether a failed call may have been carried out by
// WeCom all the same: its request went out and no errcode came back (a
// timeout, an HTTP 5xx, a dropped connection, an unreadable answer). An
// errcode, a refused connection or a failure to get the access token
// are not in doubt: WeCom did nothing.
func InDoubt(err error) bool {
	var te *transportError
	return errors.As(err, &te) && te.inDoubt
}

// Timeout reports whether the request timed out.
func (e *transportError) Timeout() bool { return e.timeout }

// HTTPStatus is the HTTP status WeCom answered, or 0 when there was none.
func (e *transportError) HTTPStatus() int { return e.status }

var (
	// credentialRE finds credentials in URLs and error texts.
	credentialRE = regexp.MustCompile(`(?i)\b(access_token|corpsecret|secret)=[^&\s"'<>,]*`)
	// statusRE finds the HTTP status in the SDK's "http get error : uri=...
	// , statusCode=500" errors.
	statusRE = regexp.MustCompile(`statusCode=(\d{3})`)
)

// redact masks access tokens and secrets in s.
func redact(s string) string {
	return credentialRE.ReplaceAllString(s, "$1=REDACTED")
}

// unreadable is an answer that is not WeCom's JSON (a proxy's HTML page,
// a truncated body).
func unreadable(err error) error {
	return &transportError{msg: "unreadable answer: " + redact(err.Error())}
}

// classify turns what the SDK or net/http returned into an error that is
// safe to print and wraps the right sentinel.
func classify(err error) error {
	var common *util.CommonError
	if errors.As(err, &common) {
		return newAPIError(common.ErrCode, common.ErrMsg)
	}
	var apiErr *adapters.APIError
	if errors.As(err, &apiErr) {
		return err
	}
	var te *transportError
	if errors.As(err, &te) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		e := &transportError{
			msg:     redact(fmt.Sprintf("%s %q: %s", ue.Op, ue.URL, ue.Err)),
			timeout: ue.Timeout(),
			refused: errors.Is(ue.Err, syscall.ECONNREFUSED),
		}
		switch {
		case errors.Is(ue.Err, context.Canceled):
			e.ctxErr = context.Canceled
		case errors.Is(ue.Err, context.DeadlineExceeded):
			e.ctxErr = context.DeadlineExceeded
		}
		return e
	}
	msg := redact(err.Error())
	if m := statusRE.FindStringSubmatch(msg); m != nil {
		status, _ := strconv.Atoi(m[1])
		return &transportError{msg: fmt.Sprintf("http status %d", status), status: status}
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if errors.As(err, &syn) || errors.As(err, &typ) || strings.HasPrefix(msg, "json Unmarshal Error") {
		return &transportError{msg: "unreadable answer: " + msg}
	}
	return &transportError{msg: msg}
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

// ---- external contacts ----

// ContactType says who a customer is.
type ContactType int

// Contact types of externalcontact/get.
const (
	ContactWeChat ContactType = 1 // a WeChat user (a member)
	ContactWeCom  ContactType = 2 // an employee of another WeCom corp
)

// Gender of a customer as WeChat reports it.
type Gender int

// Genders of externalcontact/get.
const (
	GenderUnknown Gender = 0
	GenderMale    Gender = 1
	GenderFemale  Gender = 2
)

// Contact is a customer (external contact) of the corp and the employees
// who added them (externalcontact/get).
type Contact struct {
	ExternalUserID string
	Name           string
	Avatar         string
	Type           ContactType
	Gender         Gender
	// UnionID identifies the WeChat user across the developer's apps; WeCom
	// sends it only when the corp has bound a WeChat developer account.
	UnionID     string
	FollowUsers []FollowUser
}

// FollowUser is an employee who added the customer.
type FollowUser struct {
	UserID      string
	Remark      string
	Description string
	CreateTime  time.Time
	// State is the "contact me" state the customer came through, when they
	// came through one.
	State string
	// RemarkMobiles are phone numbers the employee recorded for the
	// customer, as typed.
	RemarkMobiles []string
	// AddWay is how the customer was added (1 QR code, 2 phone search, ...).
	AddWay     int
	OperUserID string
	TagIDs     []string
}

// FollowUser returns the employee userID's relationship, if they follow
// the customer.
func (c *Contact) FollowUser(userID string) (FollowUser, bool) {
	for _, f := range c.FollowUsers {
		if f.UserID == userID {
			return f, true
		}
	}
	return FollowUser{}, false
}

// maxFollowUserPages bounds the next_cursor walk of ExternalContact (WeCom
// pages follow_user by 500).
const maxFollowUserPages = 20

// ExternalContact returns a customer and the employees who added them
// (externalcontact/get, walking next_cursor when they have more than 500).
// 84061 (not an external contact of the corp) is ErrInvalidRecipient.
func (a *API) ExternalContact(ctx context.Context, externalUserID string) (*Contact, error) {
	op := "getting external contact " + externalUserID
	if externalUserID == "" {
		return nil, noRecipient("getting external contact", "external user id")
	}
	ec := a.contact.GetExternalContact()
	var c *Contact
	cursor := ""
	for page := 0; page < maxFollowUserPages; page++ {
		var res *externalcontact.ExternalUserDetailResponse
		err := a.do(ctx, a.contTok, op, func(string) error {
			var err error
			res, err = ec.GetExternalUserDetail(url.QueryEscape(externalUserID), url.QueryEscape(cursor))
			return err
		})
		if err != nil {
			return nil, err
		}
		if c == nil {
			u := res.ExternalContact
			c = &Contact{
				ExternalUserID: u.ExternalUserID,
				Name:           u.Name,
				Avatar:         u.Avatar,
				Type:           ContactType(u.Type),
				Gender:         Gender(u.Gender),
				UnionID:        u.UnionID,
			}
		}
		for _, f := range res.FollowUser {
			fu := FollowUser{
				UserID:        f.UserID,
				Remark:        f.Remark,
				Description:   f.Description,
				State:         f.State,
				RemarkMobiles: f.RemarkMobiles,
				AddWay:        int(f.AddWay),
				OperUserID:    f.OperUserID,
			}
			if f.CreateTime > 0 {
				fu.CreateTime = time.Unix(f.CreateTime, 0)
			}
			for _, t := range f.Tags {
				// Employees' personal tags (type 2) have no id.
				if t.TagID != "" {
					fu.TagIDs = append(fu.TagIDs, t.TagID)
				}
			}
			c.FollowUsers = append(c.FollowUsers, fu)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return c, nil
		}
		cursor = res.NextCursor
	}
	a.log.Warn("wecom external contact has more follow users than read", slog.String("external_user_id", externalUserID))
	return c, nil
}

// ---- messages to customers ----

// Attachment kinds of welcome messages and message tasks.
const (
	AttachImage       = "image"
	AttachLink        = "link"
	AttachMiniProgram = "miniprogram"
	AttachVideo       = "video"
	AttachFile        = "file"
)

// Attachment is a non-text part of a welcome message or message task.
type Attachment struct {
	// Kind is AttachImage, AttachLink, AttachMiniProgram, AttachVideo or
	// AttachFile.
	Kind string
	// MediaID is the image, video or file media id, or the miniprogram
	// cover (pic_media_id).
	MediaID string
	// PicURL is an image's URL (instead of MediaID) or a link's cover.
	PicURL string
	// Title is a link's or miniprogram's title; Desc and URL are a link's.
	Title string
	Desc  string
	URL   string
	// AppID and Page are a miniprogram's.
	AppID string
	Page  string
}

// maxAttachments is WeCom's limit for welcome messages and message tasks.
const maxAttachments = 9

type wireText struct {
	Content string `json:"content"`
}

type wireMedia struct {
	MediaID string `json:"media_id,omitempty"`
	PicURL  string `json:"pic_url,omitempty"`
}

type wireLink struct {
	Title  string `json:"title"`
	PicURL string `json:"picurl,omitempty"`
	Desc   string `json:"desc,omitempty"`
	URL    string `json:"url"`
}

type wireMiniProgram struct {
	Title      string `json:"title"`
	PicMediaID string `json:"pic_media_id"`
	AppID      string `json:"appid"`
	Page       string `json:"page"`
}

type wireAttachment struct {
	MsgType     string           `json:"msgtype"`
	Image       *wireMedia       `json:"image,omitempty"`
	Link        *wireLink        `json:"link,omitempty"`
	MiniProgram *wireMiniProgram `json:"miniprogram,omitempty"`
	Video       *wireMedia       `json:"video,omitempty"`
	File        *wireMedia       `json:"file,omitempty"`
}

// attachment reads a wire attachment back.
func (w wireAttachment) attachment() Attachment {
	a := Attachment{Kind: w.MsgType}
	switch {
	case w.Image != nil:
		a.MediaID, a.PicURL = w.Image.MediaID, w.Image.PicURL
	case w.Link != nil:
		a.Title, a.PicURL, a.Desc, a.URL = w.Link.Title, w.Link.PicURL, w.Link.Desc, w.Link.URL
	case w.MiniProgram != nil:
		a.Title, a.MediaID, a.AppID, a.Page = w.MiniProgram.Title, w.MiniProgram.PicMediaID, w.MiniProgram.AppID, w.MiniProgram.Page
	case w.Video != nil:
		a.MediaID = w.Video.MediaID
	case w.File != nil:
		a.MediaID = w.File.MediaID
	}
	return a
}

func wireAttachments(op string, atts []Attachment) ([]wireAttachment, error) {
	if len(atts) > maxAttachments {
		return nil, invalidRequest(op, "%d attachments, at most %d", len(atts), maxAttachments)
	}
	out := make([]wireAttachment, 0, len(atts))
	for i, at := range atts {
		w := wireAttachment{MsgType: at.Kind}
		switch at.Kind {
		case AttachImage:
			if at.MediaID == "" && at.PicURL == "" {
				return nil, invalidRequest(op, "attachment %d: image needs a media id or a picture url", i)
			}
			w.Image = &wireMedia{MediaID: at.MediaID, PicURL: at.PicURL}
		case AttachLink:
			if at.Title == "" || at.URL == "" {
				return nil, invalidRequest(op, "attachment %d: link needs a title and a url", i)
			}
			w.Link = &wireLink{Title: at.Title, PicURL: at.PicURL, Desc: at.Desc, URL: at.URL}
		case AttachMiniProgram:
			if at.Title == "" || at.MediaID == "" || at.AppID == "" || at.Page == "" {
				return nil, invalidRequest(op, "attachment %d: miniprogram needs a title, cover media id, appid and page", i)
			}
			w.MiniProgram = &wireMiniProgram{Title: at.Title, PicMediaID: at.MediaID, AppID: at.AppID, Page: at.Page}
		case AttachVideo, AttachFile:
			if at.MediaID == "" {
				return nil, invalidRequest(op, "attachment %d: %s needs a media id", i, at.Kind)
			}
			if at.Kind == AttachVideo {
				w.Video = &wireMedia{MediaID: at.MediaID}
			} else {
				w.File = &wireMedia{MediaID: at.MediaID}
			}
		default:
			return nil, invalidRequest(op, "attachment %d: unknown kind %q", i, at.Kind)
		}
		out = append(out, w)
	}
	return out, nil
}

type welcomeRequest struct {
	WelcomeCode string           `json:"welcome_code"`
	Text        *wireText        `json:"text,omitempty"`
	Attachments []wireAttachment `json:"attachments,omitempty"`
}

type commonResponse struct {
	util.CommonError
}

// SendWelcome sends a new customer's welcome message with the WelcomeCode
// of their add_external_contact event (externalcontact/send_welcome_msg).
// The code is good for 20 seconds and one call. WeCom answers 41050 for an
// expired or unknown code and 41051 once a welcome was delivered (by an
// earlier try of ours or by another app): both are ErrInvalidRecipient,
// and WelcomeAlreadySent tells the second apart. 41096 (another app is
// sending the welcome right now) is ErrTemporary.
func (a *API) SendWelcome(ctx context.Context, welcomeCode, text string, attachments ...Attachment) error {
	const op = "sending welcome message"
	if welcomeCode == "" {
		return noRecipient(op, "welcome code")
	}
	if text == "" && len(attachments) == 0 {
		return invalidRequest(op, "no text and no attachment")
	}
	atts, err := wireAttachments(op, attachments)
	if err != nil {
		return err
	}
	req := welcomeRequest{WelcomeCode: welcomeCode, Attachments: atts}
	if text != "" {
		req.Text = &wireText{Content: text}
	}
	return a.postWelcome(ctx, &req)
}

// postWelcome sends a built send_welcome_msg request.
func (a *API) postWelcome(ctx context.Context, req *welcomeRequest) error {
	const op = "sending welcome message"
	if req.WelcomeCode == "" {
		return noRecipient(op, "welcome code")
	}
	var res commonResponse
	return a.post(ctx, a.contTok, op, apiSendWelcome, req, &res)
}

type msgTemplateRequest struct {
	ChatType       string           `json:"chat_type"`
	ExternalUserID []string         `json:"external_userid"`
	Sender         string           `json:"sender"`
	Text           *wireText        `json:"text,omitempty"`
	Attachments    []wireAttachment `json:"attachments,omitempty"`
}

type msgTemplateResponse struct {
	util.CommonError
	FailList []string `json:"fail_list"`
	MsgID    string   `json:"msgid"`
}

// maxMsgTemplateCustomers is WeCom's limit of external_userid in one
// add_msg_template.
const maxMsgTemplateCustomers = 10000

// AddMsgTemplate creates a message task (企业群发) for the employee sender to
// send to the given customers (externalcontact/add_msg_template with
// chat_type single). Nothing is sent until the employee confirms it in
// WeCom. failList holds the customers WeCom will not send to (not the
// sender's customer, or over their monthly quota of group messages).
func (a *API) AddMsgTemplate(ctx context.Context, senderUserID string, externalUserIDs []string, text string, attachments ...Attachment) (msgID string, failList []string, err error) {
	const op = "adding message task"
	if senderUserID == "" {
		return "", nil, noRecipient(op, "sender")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxMsgTemplateCustomers); err != nil {
		return "", nil, err
	}
	if text == "" && len(attachments) == 0 {
		return "", nil, invalidRequest(op, "no text and no attachment")
	}
	atts, err := wireAttachments(op, attachments)
	if err != nil {
		return "", nil, err
	}
	req := msgTemplateRequest{ChatType: "single", ExternalUserID: externalUserIDs, Sender: senderUserID, Attachments: atts}
	if text != "" {
		req.Text = &wireText{Content: text}
	}
	return a.postMsgTemplate(ctx, &req)
}

// postMsgTemplate sends a built add_msg_template request.
func (a *API) postMsgTemplate(ctx context.Context, req *msgTemplateRequest) (msgID string, failList []string, err error) {
	const op = "adding message task"
	if req.Sender == "" {
		return "", nil, noRecipient(op, "sender")
	}
	if err := checkIDs(op, "external user ids", req.ExternalUserID, maxMsgTemplateCustomers); err != nil {
		return "", nil, err
	}
	var res msgTemplateResponse
	if err := a.post(ctx, a.contTok, op, apiAddMsgTemplate, req, &res); err != nil {
		return "", nil, err
	}
	return res.MsgID, res.FailList, nil
}

// SendStatus is the state of a message task for one customer.
type SendStatus int

// Send statuses of get_groupmsg_send_result.
const (
	SendPending    SendStatus = 0 // not sent (yet): the employee has not confirmed
	SendSent       SendStatus = 1
	SendNotFriend  SendStatus = 2 // not sent: the customer is no longer the employee's contact
	SendQuotaSpent SendStatus = 3 // not sent: the customer got their quota of group messages
)

// SendResult is the state of a message task for one customer.
type SendResult struct {
	ExternalUserID string
	UserID         string
	Status         SendStatus
	// SendTime is when it was sent, zero when it was not.
	SendTime time.Time
}

const maxSendResultPages = 100

// GroupMsgSendResult returns the per-customer state of the message task
// msgID for the employee userID (externalcontact/get_groupmsg_send_result,
// all pages). 41063 (results not ready right after creation) is
// ErrTemporary.
func (a *API) GroupMsgSendResult(ctx context.Context, msgID, userID string) ([]SendResult, error) {
	op := "getting send results of message task " + msgID
	if msgID == "" || userID == "" {
		return nil, invalidRequest(op, "msgid and userid are required")
	}
	ec := a.contact.GetExternalContact()
	var out []SendResult
	cursor := ""
	for page := 0; page < maxSendResultPages; page++ {
		var res *externalcontact.GetGroupMsgSendResultResponse
		err := a.do(ctx, a.contTok, op, func(string) error {
			var err error
			res, err = ec.GetGroupMsgSendResult(&externalcontact.GetGroupMsgSendResultRequest{
				MsgID: msgID, UserID: userID, Limit: 1000, Cursor: cursor,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, s := range res.SendList {
			if s == nil {
				continue
			}
			r := SendResult{ExternalUserID: s.ExternalUserID, UserID: s.UserID, Status: SendStatus(s.Status)}
			if s.SendTime > 0 {
				r.SendTime = time.Unix(int64(s.SendTime), 0)
			}
			out = append(out, r)
		}
		if res.NextCursor == "" || res.NextCursor == cursor {
			return out, nil
		}
		cursor = res.NextCursor
	}
	return out, nil
}

// ---- contact ways ----

// ContactWayType says how many employees a contact way reaches.
type ContactWayType int

// Contact way types.
const (
	ContactWaySingle ContactWayType = 1 // one employee
	ContactWayMulti  ContactWayType = 2 // several employees, WeCom picks one
)

// Contact way scenes.
const (
	SceneMiniProgram = 1 // a button in a miniprogram
	SceneQRCode      = 2 // a QR code
)

// maxContactWayState is WeCom's limit for a contact way's state.
const maxContactWayState = 30

// ContactWay is a "contact me" (联系我, 渠道活码) configuration.
type ContactWay struct {
	Type ContactWayType
	// Scene is SceneQRCode (the default) or SceneMiniProgram.
	Scene int
	// Users are the employees' userids: exactly one for ContactWaySingle,
	// at most 100 for ContactWayMulti.
	Users []string
	// State comes back in add_external_contact events and in
	// externalcontact/get, naming the store or guide: at most 30
	// characters.
	State  string
	Remark string
	// RequireVerify makes customers wait for the employee to accept them.
	// The default (false) is WeCom's: customers are added at once.
	RequireVerify bool
}

type contactWayRequest struct {
	Type       int      `json:"type"`
	Scene      int      `json:"scene"`
	Remark     string   `json:"remark,omitempty"`
	SkipVerify bool     `json:"skip_verify"`
	State      string   `json:"state,omitempty"`
	User       []string `json:"user"`
}

type contactWayResponse struct {
	util.CommonError
	ConfigID string `json:"config_id"`
	QRCode   string `json:"qr_code"`
}

// AddContactWay creates a contact way (externalcontact/add_contact_way)
// and returns its config id and, for a QR code, the code's image URL.
func (a *API) AddContactWay(ctx context.Context, w ContactWay) (configID, qrCode string, err error) {
	const op = "adding contact way"
	if w.Scene == 0 {
		w.Scene = SceneQRCode
	}
	switch {
	case w.Type != ContactWaySingle && w.Type != ContactWayMulti:
		return "", "", invalidRequest(op, "type %d, want 1 (single) or 2 (multi)", w.Type)
	case w.Scene != SceneQRCode && w.Scene != SceneMiniProgram:
		return "", "", invalidRequest(op, "scene %d, want 1 (miniprogram) or 2 (qr code)", w.Scene)
	case w.Type == ContactWaySingle && len(w.Users) != 1:
		return "", "", invalidRequest(op, "a single contact way needs exactly one user, got %d", len(w.Users))
	case len([]rune(w.State)) > maxContactWayState:
		return "", "", invalidRequest(op, "state %q is longer than %d characters", w.State, maxContactWayState)
	}
	if err := checkIDs(op, "users", w.Users, 100); err != nil {
		return "", "", err
	}
	req := contactWayRequest{
		Type:       int(w.Type),
		Scene:      w.Scene,
		Remark:     w.Remark,
		SkipVerify: !w.RequireVerify,
		State:      w.State,
		User:       w.Users,
	}
	var res contactWayResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/add_contact_way", req, &res); err != nil {
		return "", "", err
	}
	return res.ConfigID, res.QRCode, nil
}

// ---- transfers ----

// TransferResult is the outcome of handing one customer over.
type TransferResult struct {
	ExternalUserID string
	// ErrCode is WeCom's per-customer errcode, 0 when the handover started
	// (the customer has 24 hours to refuse: a transfer_fail event follows
	// then). Err is ErrCode mapped like a call's error, nil for 0; e.g.
	// 40128 (handed over too often), 40129 (already being handed over),
	// 40131 (not the handover employee's customer).
	ErrCode int
	Err     error
}

type transferRequest struct {
	HandoverUserID     string   `json:"handover_userid"`
	TakeoverUserID     string   `json:"takeover_userid"`
	ExternalUserID     []string `json:"external_userid"`
	TransferSuccessMsg string   `json:"transfer_success_msg,omitempty"`
}

type transferResponse struct {
	util.CommonError
	Customer []externalcontact.TransferCustomerItem `json:"customer"`
}

// maxTransferCustomers is WeCom's limit per transfer call.
const maxTransferCustomers = 100

func transferResults(items []externalcontact.TransferCustomerItem) []TransferResult {
	out := make([]TransferResult, 0, len(items))
	for _, it := range items {
		r := TransferResult{ExternalUserID: it.ExternalUserID, ErrCode: it.ErrCode}
		if it.ErrCode != 0 {
			r.Err = newAPIError(int64(it.ErrCode), "transfer refused for "+it.ExternalUserID)
		}
		out = append(out, r)
	}
	return out
}

// TransferCustomer hands customers of an employee still in the corp over
// to another employee (externalcontact/transfer_customer, 在职继承; at most
// 100 per call). msg, when set, is what the customers are told (at most
// 200 characters; WeCom has a default).
func (a *API) TransferCustomer(ctx context.Context, handoverUserID, takeoverUserID string, externalUserIDs []string, msg string) ([]TransferResult, error) {
	const op = "transferring customers"
	if handoverUserID == "" || takeoverUserID == "" {
		return nil, invalidRequest(op, "handover and takeover userids are required")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxTransferCustomers); err != nil {
		return nil, err
	}
	req := transferRequest{HandoverUserID: handoverUserID, TakeoverUserID: takeoverUserID, ExternalUserID: externalUserIDs, TransferSuccessMsg: msg}
	var res transferResponse
	if err := a.post(ctx, a.contTok, op, "externalcontact/transfer_customer", req, &res); err != nil {
		return nil, err
	}
	return transferResults(res.Customer), nil
}

// TransferResignedCustomer hands customers of an employee who left the
// corp over to another employee (externalcontact/resigned/transfer_customer,
// 离职继承; at most 100 per call). WeCom tells the customers nothing.
func (a *API) TransferResignedCustomer(ctx context.Context, handoverUserID, takeoverUserID string, externalUserIDs []string) ([]TransferResult, error) {
	const op = "transferring customers of a resigned employee"
	if handoverUserID == "" || takeoverUserID == "" {
		return nil, invalidRequest(op, "handover and takeover userids are required")
	}
	if err := checkIDs(op, "external user ids", externalUserIDs, maxTransferCustomers); err != nil {
		return nil, err
	}
	ec := a.contact.GetExternalContact()
	var res *externalcontact.ResignedTransferCustomerResponse
	err := a.do(ctx, a.contTok, op, func(string) error {
		var err error
		res, err = ec.ResignedTransferCustomer(&externalcontact.ResignedTransferCustomerRequest{
			HandoverUserID: handoverUserID, TakeoverUserID: takeoverUserID, ExternalUserID: externalUserIDs,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return transferResults(res.Customer), nil
}

// ---- WeChat customer service (微信客服, kf) ----

// Origins of kf messages.
const (
	KFOriginCustomer = 3 // sent by the WeChat customer
	KFOriginEvent    = 4 // an event pushed by the system
	KFOriginServicer = 5 // sent by a servicer from the WeCom client
)

// KFMessage is a message or event read with kf/sync_msg.
type KFMessage struct {
	MsgID          string
	OpenKfID       string
	ExternalUserID string
	ServicerUserID string
	// SendTime is when it was sent, in Unix seconds.
	SendTime int64
	// Origin is KFOriginCustomer, KFOriginEvent or KFOriginServicer.
	Origin int
	// MsgType is text, image, voice, video, file, location, link,
	// business_card, miniprogram, msgmenu, event, ...
	MsgType string
	// Text is a text message's content; MenuID is set when the customer
	// clicked a menu item.
	Text   string
	MenuID string
	// MediaID is an image, voice, video or file message's media.
	MediaID string
	// Latitude, Longitude (WGS-84 degrees as WeChat sends them),
	// LocationName and LocationAddress are a location message's.
	Latitude        float64
	Longitude       float64
	LocationName    string
	LocationAddress string
	Event           *KFEvent
	// Raw is the message as WeCom sent it, for kinds not decoded here.
	Raw json.RawMessage
}

// KFEvent is an event of kf/sync_msg (enter_session, msg_send_fail,
// servicer_status_change, session_status_change, user_recall_msg, ...).
type KFEvent struct {
	Type string
	// Scene and SceneParam come with enter_session from a kf link.
	Scene      string
	SceneParam string
	// WelcomeCode, with enter_session, allows one welcome via
	// kf/send_msg_on_event.
	WelcomeCode string
	// FailMsgID and FailType come with msg_send_fail.
	FailMsgID string
	FailType  int
	// ChangeType, OldServicerUserID, NewServicerUserID and MsgCode come
	// with session_status_change.
	ChangeType        int
	OldServicerUserID string
	NewServicerUserID string
	MsgCode           string
	ServicerUserID    string
	Status            int
	RecallMsgID       string
}

// KFSyncPage is one page of kf/sync_msg.
type KFSyncPage struct {
	Messages []KFMessage
	// NextCursor goes in the next call; store it.
	NextCursor string
	// HasMore says another page is waiting, even when Messages is empty.
	HasMore bool
}

type kfSyncRequest struct {
	Cursor   string `json:"cursor,omitempty"`
	Token    string `json:"token,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	OpenKfID string `json:"open_kfid,omitempty"`
}

type kfSyncResponse struct {
	util.CommonError
	NextCursor string            `json:"next_cursor"`
	HasMore    int               `json:"has_more"`
	MsgList    []json.RawMessage `json:"msg_list"`
}

type kfWireMessage struct {
	MsgID          string `json:"msgid"`
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	ServicerUserID string `json:"servicer_userid"`
	SendTime       int64  `json:"send_time"`
	Origin         int    `json:"origin"`
	MsgType        string `json:"msgtype"`
	Text           *struct {
		Content string `json:"content"`
		MenuID  string `json:"menu_id"`
	} `json:"text"`
	Image    *wireMedia `json:"image"`
	Voice    *wireMedia `json:"voice"`
	Video    *wireMedia `json:"video"`
	File     *wireMedia `json:"file"`
	Location *struct {
		Latitude  float64 `json:"latitude"`
		Longitude float64 `json:"longitude"`
		Name      string  `json:"name"`
		Address   string  `json:"address"`
	} `json:"location"`
	Event *struct {
		EventType         string `json:"event_type"`
		OpenKfID          string `json:"open_kfid"`
		ExternalUserID    string `json:"external_userid"`
		Scene             string `json:"scene"`
		SceneParam        string `json:"scene_param"`
		WelcomeCode       string `json:"welcome_code"`
		FailMsgID         string `json:"fail_msgid"`
		FailType          int    `json:"fail_type"`
		ServicerUserID    string `json:"servicer_userid"`
		Status            int    `json:"status"`
		ChangeType        int    `json:"change_type"`
		OldServicerUserID string `json:"old_servicer_userid"`
		NewServicerUserID string `json:"new_servicer_userid"`
		MsgCode           string `json:"msg_code"`
		RecallMsgID       string `json:"recall_msgid"`
	} `json:"event"`
}

func (w *kfWireMessage) message(raw json.RawMessage) KFMessage {
	m := KFMessage{
		MsgID:          w.MsgID,
		OpenKfID:       w.OpenKfID,
		ExternalUserID: w.ExternalUserID,
		ServicerUserID: w.ServicerUserID,
		SendTime:       w.SendTime,
		Origin:         w.Origin,
		MsgType:        w.MsgType,
		Raw:            raw,
	}
	if w.Text != nil {
		m.Text, m.MenuID = w.Text.Content, w.Text.MenuID
	}
	for _, media := range []*wireMedia{w.Image, w.Voice, w.Video, w.File} {
		if media != nil {
			m.MediaID = media.MediaID
		}
	}
	if l := w.Location; l != nil {
		m.Latitude, m.Longitude, m.LocationName, m.LocationAddress = l.Latitude, l.Longitude, l.Name, l.Address
	}
	if e := w.Event; e != nil {
		m.Event = &KFEvent{
			Type:              e.EventType,
			Scene:             e.Scene,
			SceneParam:        e.SceneParam,
			WelcomeCode:       e.WelcomeCode,
			FailMsgID:         e.FailMsgID,
			FailType:          e.FailType,
			ChangeType:        e.ChangeType,
			OldServicerUserID: e.OldServicerUserID,
			NewServicerUserID: e.NewServicerUserID,
			MsgCode:           e.MsgCode,
			ServicerUserID:    e.ServicerUserID,
			Status:            e.Status,
			RecallMsgID:       e.RecallMsgID,
		}
		// Events carry the account and customer inside the event.
		if m.OpenKfID == "" {
			m.OpenKfID = e.OpenKfID
		}
		if m.ExternalUserID == "" {
			m.ExternalUserID = e.ExternalUserID
		}
		if m.ServicerUserID == "" {
			m.ServicerUserID = e.ServicerUserID
		}
	}
	return m
}

// maxKFSyncLimit is WeCom's largest (and default) page size.
const maxKFSyncLimit = 1000

// KFSyncMsg reads one page of customer-service messages (kf/sync_msg)
// from cursor (empty the first time), for the account openKfID. token is
// the Token of the kf_msg_or_event callback (valid 10 minutes); without it
// WeCom limits the call's frequency strictly. limit is capped at 1000 (0
// means 1000).
func (a *API) KFSyncMsg(ctx context.Context, cursor, token, openKfID string, limit int) (*KFSyncPage, error) {
	const op = "reading kf messages"
	if limit <= 0 || limit > maxKFSyncLimit {
		limit = maxKFSyncLimit
	}
	req := kfSyncRequest{Cursor: cursor, Token: token, Limit: limit, OpenKfID: openKfID}
	var res kfSyncResponse
	if err := a.post(ctx, a.appTok, op, "kf/sync_msg", req, &res); err != nil {
		return nil, err
	}
	page := &KFSyncPage{NextCursor: res.NextCursor, HasMore: res.HasMore == 1}
	for _, raw := range res.MsgList {
		var w kfWireMessage
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, fmt.Errorf("%s: %w", op, unreadable(err))
		}
		page.Messages = append(page.Messages, w.message(raw))
	}
	return page, nil
}

// KFLink is a link card sent with kf/send_msg.
type KFLink struct {
	Title        string `json:"title"`
	Desc         string `json:"desc,omitempty"`
	URL          string `json:"url"`
	ThumbMediaID string `json:"thumb_media_id"`
}

// KFMiniProgram is a miniprogram card sent with kf/send_msg.
type KFMiniProgram struct {
	AppID        string `json:"appid"`
	Title        string `json:"title,omitempty"`
	ThumbMediaID string `json:"thumb_media_id"`
	PagePath     string `json:"pagepath"`
}

type kfSendRequest struct {
	ToUser      string         `json:"touser"`
	OpenKfID    string         `json:"open_kfid"`
	MsgID       string         `json:"msgid,omitempty"`
	MsgType     string         `json:"msgtype"`
	Text        *wireText      `json:"text,omitempty"`
	Image       *wireMedia     `json:"image,omitempty"`
	File        *wireMedia     `json:"file,omitempty"`
	Link        *KFLink        `json:"link,omitempty"`
	MiniProgram *KFMiniProgram `json:"miniprogram,omitempty"`
}

type kfSendResponse struct {
	util.CommonError
	MsgID string `json:"msgid"`
}

// kfMsgIDRE is WeCom's format of a caller-chosen kf msgid.
var kfMsgIDRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,32}$`)

func (a *API) kfSend(ctx context.Context, op string, req kfSendRequest) (string, error) {
	if req.ToUser == "" {
		return "", noRecipient(op, "external user id")
	}
	if req.OpenKfID == "" {
		return "", invalidRequest(op, "no open_kfid")
	}
	if req.MsgID != "" && !kfMsgIDRE.MatchString(req.MsgID) {
		return "", invalidRequest(op, "msgid %q is not 1-32 characters of [0-9a-zA-Z_-] ", req.MsgID)
	}
	var res kfSendResponse
	if err := a.post(ctx, a.appTok, op, apiKFSend, req, &res); err != nil {
		return "", err
	}
	return res.MsgID, nil
}

// KFSendMsg sends a text to a customer in a customer-service session
// (kf/send_msg): possible within 48 hours of the customer's last message,
// at most 5 messages, while the session is new or with the bot; otherwise
// WeCom answers 95018, ErrInvalidRecipient. msgID is optional: at most 32
// characters of [0-9a-zA-Z_-], unique within the kf account, so that
// WeCom refuses a retry instead of sending twice (derive it from the
// idempotency key). WeCom returns the msgid it used.
func (a *API) KFSendMsg(ctx context.Context, toExternalUserID, openKfID, msgID, text string) (string, error) {
	const op = "sending kf text"
	if text == "" {
		return "", invalidRequest(op, "empty text")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "text", Text: &wireText{Content: text}})
}

// KFSendLink sends a link card in a customer-service session, under the
// same conditions as KFSendMsg.
func (a *API) KFSendLink(ctx context.Context, toExternalUserID, openKfID, msgID string, link KFLink) (string, error) {
	const op = "sending kf link"
	if link.Title == "" || link.URL == "" || link.ThumbMediaID == "" {
		return "", invalidRequest(op, "a link needs a title, a url and a thumb media id")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "link", Link: &link})
}

// KFSendMiniProgram sends a miniprogram card in a customer-service
// session, under the same conditions as KFSendMsg.
func (a *API) KFSendMiniProgram(ctx context.Context, toExternalUserID, openKfID, msgID string, mp KFMiniProgram) (string, error) {
	const op = "sending kf miniprogram"
	if mp.AppID == "" || mp.ThumbMediaID == "" || mp.PagePath == "" {
		return "", invalidRequest(op, "a miniprogram needs an appid, a thumb media id and a page path")
	}
	return a.kfSend(ctx, op, kfSendRequest{ToUser: toExternalUserID, OpenKfID: openKfID, MsgID: msgID, MsgType: "miniprogram", MiniProgram: &mp})
}

// ---- app messages to employees ----

// App message kinds.
const (
	AppText     = "text"
	AppMarkdown = "markdown"
	AppTextCard = "textcard"
)

// AppMsg is a message of the app to employees (message/send).
type AppMsg struct {
	// Kind is AppText (the default), AppMarkdown or AppTextCard.
	Kind string
	// Content is the text or markdown, or a text card's description.
	Content string
	// Title, URL and BtnTxt are a text card's.
	Title  string
	URL    string
	BtnTxt string
	// DuplicateCheck, when set, has WeCom drop the same message to the same
	// employees within this window (at most 4 hours), so that a retried
	// send is not delivered twice.
	DuplicateCheck time.Duration
}

type appTextCard struct {
	Title       string `json:"title"`
	Description string `json:"description"`
	URL         string `json:"url"`
	BtnTxt      string `json:"btntxt,omitempty"`
}

// appArticle is one article of an app news message.
type appArticle struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url"`
	PicURL      string `json:"picurl,omitempty"`
}

type appNews struct {
	Articles []appArticle `json:"articles"`
}

type appMessageRequest struct {
	ToUser                 string       `json:"touser"`
	MsgType                string       `json:"msgtype"`
	AgentID                int          `json:"agentid"`
	Text                   *wireText    `json:"text,omitempty"`
	Markdown               *wireText    `json:"markdown,omitempty"`
	TextCard               *appTextCard `json:"textcard,omitempty"`
	News                   *appNews     `json:"news,omitempty"`
	EnableDuplicateCheck   int          `json:"enable_duplicate_check,omitempty"`
	DuplicateCheckInterval int          `json:"duplicate_check_interval,omitempty"`
}

type appMessageResponse struct {
	util.CommonError
	InvalidUser    string `json:"invaliduser"`
	UnlicensedUser string `json:"unlicenseduser"`
	MsgID          string `json:"msgid"`
}

// maxAppMessageUsers is WeCom's limit of touser.
const maxAppMessageUsers = 1000

// AppMessage sends a text app message to employees (message/send); see
// SendAppMsg.
func (a *API) AppMessage(ctx context.Context, toUserIDs []string, text string) (msgID string, invalidUsers []string, err error) {
	return a.SendAppMsg(ctx, toUserIDs, AppMsg{Kind: AppText, Content: text})
}

// SendAppMsg sends an app message (text, markdown or text card) to
// employees (message/send). WeCom delivers to the valid ones and lists the
// others in invalidUsers (invaliduser and unlicenseduser); when none is
// valid it answers 81013, ErrInvalidRecipient.
func (a *API) SendAppMsg(ctx context.Context, toUserIDs []string, m AppMsg) (msgID string, invalidUsers []string, err error) {
	const op = "sending app message"
	if err := checkIDs(op, "user ids", toUserIDs, maxAppMessageUsers); err != nil {
		return "", nil, err
	}
	if a.agentID == 0 {
		return "", nil, invalidRequest(op, "no agent id configured")
	}
	req := appMessageRequest{ToUser: strings.Join(toUserIDs, "|"), AgentID: a.agentID}
	switch m.Kind {
	case "", AppText:
		req.MsgType, req.Text = AppText, &wireText{Content: m.Content}
	case AppMarkdown:
		req.MsgType, req.Markdown = AppMarkdown, &wireText{Content: m.Content}
	case AppTextCard:
		if m.Title == "" || m.URL == "" {
			return "", nil, invalidRequest(op, "a text card needs a title and a url")
		}
		req.MsgType, req.TextCard = AppTextCard, &appTextCard{Title: m.Title, Description: m.Content, URL: m.URL, BtnTxt: m.BtnTxt}
	default:
		return "", nil, invalidRequest(op, "unknown kind %q", m.Kind)
	}
	if m.Content == "" {
		return "", nil, invalidRequest(op, "empty content")
	}
	if m.DuplicateCheck > 0 {
		req.EnableDuplicateCheck = 1
		req.DuplicateCheckInterval = int(min(m.DuplicateCheck, 4*time.Hour) / time.Second)
	}
	return a.postAppMessage(ctx, &req)
}

// postAppMessage sends a built message/send request. It goes through our
// own JSON encoding (the SDK's Send escapes <, > and & as \u003c...), so
// that the body is byte for byte what Preview shows.
func (a *API) postAppMessage(ctx context.Context, req *appMessageRequest) (msgID string, invalidUsers []string, err error) {
	const op = "sending app message"
	if a.agentID == 0 {
		return "", nil, invalidRequest(op, "no agent id configured")
	}
	if req.ToUser == "" {
		return "", nil, noRecipient(op, "user ids")
	}
	req.AgentID = a.agentID
	var res appMessageResponse
	if err := a.post(ctx, a.appTok, op, apiMessageSend, req, &res); err != nil {
		return "", nil, err
	}
	for _, list := range []string{res.InvalidUser, res.UnlicensedUser} {
		for _, u := range strings.Split(list, "|") {
			if u != "" {
				invalidUsers = append(invalidUsers, u)
			}
		}
	}
	return res.MsgID, invalidUsers, nil
}
