package dingtalkfake

import (
	"encoding/json"
	"fmt"
	mathrand "math/rand"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// Paths served by OpenAPI.
const (
	PathAccessToken    = "/v1.0/oauth2/accessToken"
	PathBatchSend      = "/v1.0/robot/oToMessages/batchSend"
	PathGroupSend      = "/v1.0/robot/groupMessages/send"
	PathSessionWebhook = "/robot/sendBySession"
)

// AccessTokenHeader carries the access token of OpenAPI calls.
const AccessTokenHeader = "x-acs-dingtalk-access-token"

// Error codes of api.dingtalk.com the fake uses.
const (
	// CodeInvalidAuthentication: a missing, unknown or expired access
	// token (HTTP 400, message "不合法的access_token").
	CodeInvalidAuthentication = "InvalidAuthentication"
	// CodeQPSLimitForAPI: the API's global QPS limit (HTTP 403).
	CodeQPSLimitForAPI = "Forbidden.AccessDenied.QpsLimitForApi"
	// CodeQPSLimitForAppkeyAndAPI: the per-app QPS limit of an API (HTTP 403).
	CodeQPSLimitForAppkeyAndAPI = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
	// CodeMissingBody: a request without a JSON body (HTTP 400).
	CodeMissingBody = "Missingbody"
	// CodeInvalidParameter is the fake's own code for a malformed request
	// body; the real API has finer-grained codes.
	CodeInvalidParameter = "invalidParameter"
	// CodeInvalidClientID and CodeInvalidClientSecret answer accessToken
	// calls with wrong app credentials (HTTP 400). Not verified against
	// the real API.
	CodeInvalidClientID     = "invalidClientId"
	CodeInvalidClientSecret = "invalidClientSecret"
)

// Session webhook results: the webhook answers HTTP 200 with
// {"errcode", "errmsg"}, also when the session is unknown or expired.
const (
	WebhookErrcodeOK        = 0
	WebhookErrcodeNoSession = 300001
)

const (
	webhookErrmsgNoSession      = "session 不存在"
	maxBatchSendUsers           = 20
	defaultSessionWebhookExpiry = 90 * time.Minute
)

// APIOption configures an OpenAPI.
type APIOption func(*OpenAPI)

// WithAppCredential sets the appKey and appSecret the accessToken
// endpoint accepts. Default DefaultClientID and DefaultClientSecret.
func WithAppCredential(appKey, appSecret string) APIOption {
	return func(o *OpenAPI) { o.appKey, o.appSecret = appKey, appSecret }
}

// WithRobotCode sets the robotCode the send endpoints accept. Default the
// appKey, as for a robot of an organisation's internal app.
func WithRobotCode(code string) APIOption {
	return func(o *OpenAPI) { o.robotCode = code }
}

// WithTokenTTL sets the lifetime of access tokens. Default 7200s.
func WithTokenTTL(d time.Duration) APIOption {
	return func(o *OpenAPI) {
		if d > 0 {
			o.tokenTTL = d
		}
	}
}

// WithClock sets the clock tokens and session webhooks expire by.
// Default time.Now.
func WithClock(now func() time.Time) APIOption {
	return func(o *OpenAPI) { o.now = now }
}

// Failure is an error the OpenAPI fake answers a call with.
type Failure struct {
	// Path is the endpoint that fails. Empty means either send endpoint
	// (batchSend, groupMessages/send).
	Path string
	// Status is the HTTP status, e.g. 403 for a QPS limit.
	Status int
	// Code and Message make the error body.
	Code    string
	Message string
}

// SentMessage is one accepted call of a send endpoint.
type SentMessage struct {
	Path               string
	RobotCode          string
	UserIDs            []string // batchSend
	OpenConversationID string   // groupMessages/send
	MsgKey             string
	// MsgParam is the JSON string as sent.
	MsgParam        string
	ProcessQueryKey string
	// InvalidStaffIDs and FlowControlledStaffIDs are what batchSend
	// answered for the users marked so; the others got the message.
	InvalidStaffIDs        []string
	FlowControlledStaffIDs []string
}

// WebhookReply is one accepted post to a session webhook.
type WebhookReply struct {
	ConversationID string
	Msgtype        string
	Body           json.RawMessage
	// At is when the fake accepted it (its clock, WithClock).
	At time.Time
}

// OpenAPI is a fake of the DingTalk OpenAPI endpoints that send robot
// messages. It is safe for concurrent use.
type OpenAPI struct {
	srv       *httptest.Server
	mux       *http.ServeMux
	appKey    string
	appSecret string
	robotCode string
	tokenTTL  time.Duration
	now       func() time.Time

	mu             sync.Mutex
	token          string
	tokenExpires   time.Time
	tokens         map[string]time.Time // every token issued → expiry
	tokenRequests  int
	calls          map[string]int
	sent           []SentMessage
	replies        []WebhookReply
	sessions       map[string]session
	failures       []Failure
	failRate       float64
	failRand       *mathrand.Rand
	failCount      int
	invalidUsers   map[string]bool
	flowControlled map[string]bool
}

type session struct {
	conversationID string
	expires        time.Time
}

// NewOpenAPI starts an OpenAPI fake. If tb is not nil, it is closed when
// the test ends; otherwise the caller must call Close.
func NewOpenAPI(tb testing.TB, opts ...APIOption) *OpenAPI {
	o := &OpenAPI{
		appKey:         DefaultClientID,
		appSecret:      DefaultClientSecret,
		tokenTTL:       7200 * time.Second,
		now:            time.Now,
		tokens:         make(map[string]time.Time),
		calls:          make(map[string]int),
		sessions:       make(map[string]session),
		invalidUsers:   make(map[string]bool),
		flowControlled: make(map[string]bool),
	}
	for _, opt := range opts {
		opt(o)
	}
	if o.robotCode == "" {
		o.robotCode = o.appKey
	}
	o.mux = http.NewServeMux()
	o.mux.HandleFunc(PathAccessToken, o.serveAccessToken)
	o.mux.HandleFunc(PathBatchSend, o.serveBatchSend)
	o.mux.HandleFunc(PathGroupSend, o.serveGroupSend)
	o.mux.HandleFunc(PathSessionWebhook, o.serveSessionWebhook)
	o.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, http.StatusNotFound, "NotFound", "no such endpoint on the fake OpenAPI")
	})
	o.srv = httptest.NewServer(o.mux)
	if tb != nil {
		tb.Cleanup(o.Close)
	}
	return o
}

// URL returns the base URL standing in for https://api.dingtalk.com.
func (o *OpenAPI) URL() string { return o.srv.URL }

// RobotCode returns the robotCode the send endpoints accept.
func (o *OpenAPI) RobotCode() string { return o.robotCode }

// Close stops the server. It is idempotent.
func (o *OpenAPI) Close() { o.srv.Close() }

// FailNext makes the next n calls matching f.Path fail with f.
func (o *OpenAPI) FailNext(n int, f Failure) {
	if f.Message == "" {
		f.Message = http.StatusText(f.Status)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		o.failures = append(o.failures, f)
	}
}

// FailRandomly makes a fraction of all calls (accessToken, the send
// endpoints and session webhooks) fail before they do anything, as a
// flaky network and a busy platform do: in turn the per-app QPS limit
// (HTTP 403, CodeQPSLimitForAppkeyAndAPI), an HTTP 502 and an HTTP 504
// with a non-JSON body (a proxy's answer; not verified for session
// webhooks, whose real refusals are errcodes in a 200). seed makes the
// sequence repeatable; rate 0 stops it. Failures queued with FailNext
// come first.
func (o *OpenAPI) FailRandomly(rate float64, seed int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failRate, o.failRand = rate, mathrand.New(mathrand.NewSource(seed))
}

// RandomFailures counts the calls FailRandomly failed.
func (o *OpenAPI) RandomFailures() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failCount
}

// MarkInvalidUsers makes batchSend list these userids in
// invalidStaffIdList instead of delivering to them.
func (o *OpenAPI) MarkInvalidUsers(userIDs ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, id := range userIDs {
		o.invalidUsers[id] = true
	}
}

// MarkFlowControlled makes batchSend list these userids in
// flowControlledStaffIdList (throttled per user) instead of delivering.
// Pass no ids to clear the list.
func (o *OpenAPI) MarkFlowControlled(userIDs ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(userIDs) == 0 {
		clear(o.flowControlled)
	}
	for _, id := range userIDs {
		o.flowControlled[id] = true
	}
}

// ExpireTokens makes every access token issued so far invalid, as if
// their lifetime had passed.
func (o *OpenAPI) ExpireTokens() {
	o.mu.Lock()
	defer o.mu.Unlock()
	past := o.now().Add(-time.Second)
	for t := range o.tokens {
		o.tokens[t] = past
	}
	o.tokenExpires = past
}

// TokensIssued returns how many distinct access tokens were issued. A
// token asked for again while valid is the same token, renewed.
func (o *OpenAPI) TokensIssued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.tokens)
}

// TokenRequests returns how many accessToken calls succeeded.
func (o *OpenAPI) TokenRequests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tokenRequests
}

// Calls returns how many requests reached path, failed ones included.
func (o *OpenAPI) Calls(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[path]
}

// Sent returns the accepted send calls, oldest first.
func (o *OpenAPI) Sent() []SentMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.sent)
}

// Replies returns the accepted session webhook posts, oldest first.
func (o *OpenAPI) Replies() []WebhookReply {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.replies)
}

// NewSessionWebhook mints a session webhook URL for conversationID that
// accepts replies for ttl (90 minutes if ttl is 0), and returns it with
// its expiry.
func (o *OpenAPI) NewSessionWebhook(conversationID string, ttl time.Duration) (string, time.Time) {
	if ttl == 0 {
		ttl = defaultSessionWebhookExpiry
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	id := randomHex(16)
	exp := o.now().Add(ttl)
	o.sessions[id] = session{conversationID: conversationID, expires: exp}
	return o.srv.URL + PathSessionWebhook + "?session=" + id, exp
}

// begin counts the call and applies an injected failure; it reports
// whether the handler should go on.
func (o *OpenAPI) begin(w http.ResponseWriter, r *http.Request, sendEndpoint bool) bool {
	o.mu.Lock()
	o.calls[r.URL.Path]++
	for i, f := range o.failures {
		if f.Path == r.URL.Path || f.Path == "" && sendEndpoint {
			o.failures = slices.Delete(o.failures, i, i+1)
			o.mu.Unlock()
			writeAPIError(w, f.Status, f.Code, f.Message)
			return false
		}
	}
	if o.failRate > 0 && o.failRand.Float64() < o.failRate {
		o.failCount++
		n := o.failCount
		o.mu.Unlock()
		switch n % 3 {
		case 1:
			writeAPIError(w, http.StatusForbidden, CodeQPSLimitForAppkeyAndAPI, "api qps limit for appkey and api")
		case 2:
			http.Error(w, http.StatusText(http.StatusBadGateway), http.StatusBadGateway)
		default:
			http.Error(w, http.StatusText(http.StatusGatewayTimeout), http.StatusGatewayTimeout)
		}
		return false
	}
	o.mu.Unlock()
	if r.Method != http.MethodPost {
		writeAPIError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeAPIError(w, http.StatusBadRequest, CodeMissingBody, "body is mandatory for this action.")
		return false
	}
	return true
}

func (o *OpenAPI) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok := r.Header.Get(AccessTokenHeader)
	o.mu.Lock()
	exp, ok := o.tokens[tok]
	ok = ok && o.now().Before(exp)
	o.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidAuthentication, "不合法的access_token")
	}
	return ok
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidParameter, "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func (o *OpenAPI) serveAccessToken(w http.ResponseWriter, r *http.Request) {
	if !o.begin(w, r, false) {
		return
	}
	var req struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	switch {
	case req.AppKey != o.appKey:
		writeAPIError(w, http.StatusBadRequest, CodeInvalidClientID, "无效的clientId")
		return
	case req.AppSecret != o.appSecret:
		writeAPIError(w, http.StatusBadRequest, CodeInvalidClientSecret, "无效的clientSecret")
		return
	}
	o.mu.Lock()
	now := o.now()
	if o.token == "" || !now.Before(o.tokenExpires) {
		o.token = randomHex(16)
	}
	o.tokenExpires = now.Add(o.tokenTTL)
	o.tokens[o.token] = o.tokenExpires
	o.tokenRequests++
	tok := o.token
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"accessToken"`
		ExpireIn    int64  `json:"expireIn"`
	}{tok, int64(o.tokenTTL / time.Second)})
}

type sendRequest struct {
	RobotCode          string   `json:"robotCode"`
	UserIDs            []string `json:"userIds"`
	OpenConversationID string   `json:"openConversationId"`
	MsgKey             string   `json:"msgKey"`
	MsgParam           string   `json:"msgParam"`
}

// validate checks the fields both send endpoints share.
func (o *OpenAPI) validate(w http.ResponseWriter, req *sendRequest) bool {
	var problem string
	switch {
	case req.RobotCode == "":
		problem = "robotCode is mandatory"
	case req.RobotCode != o.robotCode:
		problem = fmt.Sprintf("robotCode %q is not a robot of this app", req.RobotCode)
	}
	if problem != "" {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidParameter, problem)
		return false
	}
	if code, msg := checkMessage(req.MsgKey, req.MsgParam); code != "" {
		writeAPIError(w, http.StatusBadRequest, code, msg)
		return false
	}
	return true
}

func (o *OpenAPI) serveBatchSend(w http.ResponseWriter, r *http.Request) {
	if !o.begin(w, r, true) || !o.authorized(w, r) {
		return
	}
	var req sendRequest
	if !decodeBody(w, r, &req) || !o.validate(w, &req) {
		return
	}
	if n := len(req.UserIDs); n == 0 || n > maxBatchSendUsers {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidParameter,
			fmt.Sprintf("userIds must hold 1 to %d ids, got %d", maxBatchSendUsers, n))
		return
	}
	o.mu.Lock()
	m := SentMessage{
		Path:                   PathBatchSend,
		RobotCode:              req.RobotCode,
		UserIDs:                slices.Clone(req.UserIDs),
		MsgKey:                 req.MsgKey,
		MsgParam:               req.MsgParam,
		ProcessQueryKey:        randomHex(20),
		InvalidStaffIDs:        []string{},
		FlowControlledStaffIDs: []string{},
	}
	for _, id := range req.UserIDs {
		switch {
		case o.invalidUsers[id]:
			m.InvalidStaffIDs = append(m.InvalidStaffIDs, id)
		case o.flowControlled[id]:
			m.FlowControlledStaffIDs = append(m.FlowControlledStaffIDs, id)
		}
	}
	o.sent = append(o.sent, m)
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		ProcessQueryKey           string   `json:"processQueryKey"`
		InvalidStaffIDList        []string `json:"invalidStaffIdList"`
		FlowControlledStaffIDList []string `json:"flowControlledStaffIdList"`
	}{m.ProcessQueryKey, m.InvalidStaffIDs, m.FlowControlledStaffIDs})
}

func (o *OpenAPI) serveGroupSend(w http.ResponseWriter, r *http.Request) {
	if !o.begin(w, r, true) || !o.authorized(w, r) {
		return
	}
	var req sendRequest
	if !decodeBody(w, r, &req) || !o.validate(w, &req) {
		return
	}
	if req.OpenConversationID == "" {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidParameter, "openConversationId is mandatory")
		return
	}
	o.mu.Lock()
	m := SentMessage{
		Path:               PathGroupSend,
		RobotCode:          req.RobotCode,
		OpenConversationID: req.OpenConversationID,
		MsgKey:             req.MsgKey,
		MsgParam:           req.MsgParam,
		ProcessQueryKey:    randomHex(20),
	}
	o.sent = append(o.sent, m)
	o.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		ProcessQueryKey string `json:"processQueryKey"`
	}{m.ProcessQueryKey})
}

// serveSessionWebhook takes a reply posted to a sessionWebhook URL. Like
// the real oapi.dingtalk.com it answers HTTP 200 with an errcode, also
// when the session is unknown or expired.
func (o *OpenAPI) serveSessionWebhook(w http.ResponseWriter, r *http.Request) {
	if !o.begin(w, r, false) {
		return
	}
	var body json.RawMessage
	if !decodeBody(w, r, &body) {
		return
	}
	var head struct {
		Msgtype string `json:"msgtype"`
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &head) != nil || head.Msgtype == "" || json.Unmarshal(body, &fields) != nil {
		writeAPIError(w, http.StatusBadRequest, CodeInvalidParameter, "body must be a JSON object with msgtype")
		return
	}
	type result struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
	}
	if code, msg := checkWebhookMessage(head.Msgtype, fields); code != 0 {
		writeJSON(w, http.StatusOK, result{code, msg})
		return
	}
	o.mu.Lock()
	s, ok := o.sessions[r.URL.Query().Get("session")]
	ok = ok && o.now().Before(s.expires)
	if ok {
		o.replies = append(o.replies, WebhookReply{
			ConversationID: s.conversationID,
			Msgtype:        head.Msgtype,
			Body:           slices.Clone(body),
			At:             o.now(),
		})
	}
	o.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusOK, result{WebhookErrcodeNoSession, webhookErrmsgNoSession})
		return
	}
	writeJSON(w, http.StatusOK, result{WebhookErrcodeOK, "ok"})
}
