package wecomfake

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mathrand "math/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
)

// Defaults of a Server and a Callback. The corp id, token and
// EncodingAESKey are those of WeCom's published callback sample.
const (
	DefaultCorpID         = "wx5823bf96d3bd56c7"
	DefaultAgentID        = "1000002"
	DefaultSecret         = "fake-app-secret-0123456789abcdefghijklmnopq"
	DefaultContactSecret  = "fake-contact-secret-0123456789abcdefghijklm"
	DefaultToken          = "QDG6eK"
	DefaultEncodingAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
)

// Paths served by Server.
const (
	PathGetToken                 = "/cgi-bin/gettoken"
	PathExternalContactGet       = "/cgi-bin/externalcontact/get"
	PathSendWelcomeMsg           = "/cgi-bin/externalcontact/send_welcome_msg"
	PathAddMsgTemplate           = "/cgi-bin/externalcontact/add_msg_template"
	PathGroupMsgSendResult       = "/cgi-bin/externalcontact/get_groupmsg_send_result"
	PathCancelGroupMsgSend       = "/cgi-bin/externalcontact/cancel_groupmsg_send"
	PathGroupMsgListV2           = "/cgi-bin/externalcontact/get_groupmsg_list_v2"
	PathAddContactWay            = "/cgi-bin/externalcontact/add_contact_way"
	PathTransferCustomer         = "/cgi-bin/externalcontact/transfer_customer"
	PathResignedTransferCustomer = "/cgi-bin/externalcontact/resigned/transfer_customer"
	PathKFSyncMsg                = "/cgi-bin/kf/sync_msg"
	PathKFSendMsg                = "/cgi-bin/kf/send_msg"
	PathMessageSend              = "/cgi-bin/message/send"
)

// WeCom errcodes the fake answers with. Messages come from
// testdata/api/errors.json.
const (
	CodeSystemBusy          = -1
	CodeInvalidCredential   = 40001 // wrong secret at gettoken
	CodeInvalidUserID       = 40003
	CodeInvalidCorpID       = 40013
	CodeInvalidToken        = 40014
	CodeInvalidParameter    = 40058 // also malformed JSON
	CodeInvalidExternalUser = 40096
	CodeNotFollowUser       = 40131 // handover_userid does not follow the customer
	CodeTokenMissing        = 41001
	CodeSecretMissing       = 41004
	CodeMissingUserID       = 41009
	CodeMissingAgentID      = 41011
	CodeMissingExternalUser = 41035
	CodeMissingWayType      = 41037
	CodeMissingWayScene     = 41038
	CodeInvalidWayType      = 41039
	CodeInvalidWayScene     = 41040
	CodeTooManyWayUsers     = 41041
	CodeMissingMsgID        = 41046
	CodeInvalidMsgID        = 41047
	CodeNoCustomerToSend    = 41048
	CodeMissingWelcomeCode  = 41049
	CodeInvalidWelcomeCode  = 41050 // unknown, or older than 20 seconds
	CodeStartedChatting     = 41051 // the welcome code was used
	CodeTokenExpired        = 42001
	CodeEmptyContent        = 44004
	CodeFreqLimit           = 45009
	CodeAPIForbidden        = 48002 // token of a secret that may not call the API
	CodeInvalidCursor       = 50100
	CodeAllToUserInvalid    = 81013
	CodeNoRecipient         = 82001
	CodeNotExternalContact  = 84061
	CodeInvalidOpenKfID     = 95000
	CodeSessionInvalid      = 95018 // kf: no open session with the customer
	CodeAgentMismatch       = 301002
)

// Option configures a Server.
type Option func(*Server)

// WithCorpID sets the corp id gettoken accepts. Default DefaultCorpID.
func WithCorpID(id string) Option { return func(s *Server) { s.corpID = id } }

// WithAgentID sets the app's agent id message/send accepts. Default
// DefaultAgentID.
func WithAgentID(id string) Option { return func(s *Server) { s.agentID = id } }

// WithSecrets sets the app secret (message/send, kf) and the
// customer-contact secret (externalcontact). Equal secrets make one token
// good for every API. Default DefaultSecret and DefaultContactSecret.
func WithSecrets(app, contact string) Option {
	return func(s *Server) { s.appSecret, s.contactSecret = app, contact }
}

// WithClock sets the clock tokens, welcome codes and kf sessions expire by.
// Default time.Now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenTTL sets the lifetime (expires_in) of access tokens. Default
// 7200 seconds.
func WithTokenTTL(d time.Duration) Option { return func(s *Server) { s.tokenTTL = d } }

// WithFollowUserPageSize sets how many follow_user externalcontact/get
// returns per page. Default 500, as WeCom.
func WithFollowUserPageSize(n int) Option { return func(s *Server) { s.followPage = n } }

// WithTestdataDir sets the directory of the recorded responses. Default
// adapters/wecom/testdata/api, found from this source file or by walking up
// from the working directory to go.mod.
func WithTestdataDir(dir string) Option { return func(s *Server) { s.dataDir = dir } }

// Call is one request the server received.
type Call struct {
	Method string
	Path   string
	At     time.Time
	// Errcode is what the server answered, -2 for an HTTP failure.
	Errcode int
}

type scope uint8

const (
	scopeApp scope = 1 << iota
	scopeContact
)

type tokenInfo struct {
	scope   scope
	expires time.Time
	expired bool
}

type failure struct {
	path    string
	n       int
	code    int
	msg     string
	status  int
	applied int
	// after: the call is carried out, then answered with status.
	after bool
}

// Server is a fake of WeCom's server API. It is safe for concurrent use.
type Server struct {
	srv           *httptest.Server
	handler       http.Handler
	corpID        string
	agentID       string
	appSecret     string
	contactSecret string
	tokenTTL      time.Duration
	followPage    int
	now           func() time.Time
	dataDir       string
	data          map[string]json.RawMessage
	errmsgs       map[int]string

	mu            sync.Mutex
	seq           int
	tokens        map[string]*tokenInfo
	current       map[string]string // secret → its live token
	tokenRequests int
	tokensIssued  int
	failures      []*failure
	failRate      float64
	failRand      *mathrand.Rand
	failCount     int
	calls         []Call
	employees     map[string]bool
	contacts      map[string]*Contact
	welcomeCodes  map[string]*welcomeCode
	templates     []*MsgTemplateRequest
	templateSends map[string][]*templateSend // msgid → per-customer state
	stopped       map[string]bool            // msgid → stopped (cancel_groupmsg_send)
	stops         []string                   // msgids of cancel_groupmsg_send, in order
	welcomes      []WelcomeRequest
	contactWays   []ContactWayRequest
	transfers     []TransferRequest
	// transferStates is each customer's latest transfer (transfers.go).
	transferStates map[string]*transferState
	lastTakeover   map[string]time.Time
	contactLimits  map[string]int
	resignedUsers  map[string]bool
	appMessages    []AppMessageRequest
	dupChecks      map[string]time.Time
	kf             kfState
	tagState       tagState
	groups         groupState
	acq            acquisitionState
	moments        momentState
	media          mediaState
	delays         map[string]delay
	rates          map[string]*rateWindow
	callWindows    []CallWindow
	windowCounts   map[string][]windowCount
	rateLimited    int
}

// New starts a Server. If tb is not nil, it is closed when the test ends
// (and a missing testdata directory fails the test); otherwise the caller
// must call Close.
func New(tb testing.TB, opts ...Option) *Server {
	s := &Server{
		corpID:        DefaultCorpID,
		agentID:       DefaultAgentID,
		appSecret:     DefaultSecret,
		contactSecret: DefaultContactSecret,
		tokenTTL:      7200 * time.Second,
		followPage:    500,
		now:           time.Now,
		tokens:        make(map[string]*tokenInfo),
		current:       make(map[string]string),
		employees:     make(map[string]bool),
		contacts:      make(map[string]*Contact),
		welcomeCodes:  make(map[string]*welcomeCode),
		templateSends: make(map[string][]*templateSend),
		stopped:       make(map[string]bool),
		dupChecks:     make(map[string]time.Time),
		delays:        make(map[string]delay),
		rates:         make(map[string]*rateWindow),

		transferStates: make(map[string]*transferState),
		lastTakeover:   make(map[string]time.Time),
		contactLimits:  make(map[string]int),
		resignedUsers:  make(map[string]bool),
	}
	s.kf.init()
	s.media.items = make(map[string]*mediaItem)
	for _, o := range opts {
		o(s)
	}
	if err := s.loadTestdata(); err != nil {
		if tb != nil {
			tb.Helper()
			tb.Fatalf("wecomfake: %v", err)
		}
		panic("wecomfake: " + err.Error())
	}
	mux := http.NewServeMux()
	mux.HandleFunc(PathGetToken, s.serveGetToken)
	s.handle(mux, PathExternalContactGet, http.MethodGet, scopeContact, s.serveExternalContactGet)
	s.handle(mux, PathSendWelcomeMsg, http.MethodPost, scopeContact, s.serveSendWelcome)
	s.handle(mux, PathAddMsgTemplate, http.MethodPost, scopeContact, s.serveAddMsgTemplate)
	s.handle(mux, PathGroupMsgSendResult, http.MethodPost, scopeContact, s.serveGroupMsgSendResult)
	s.handle(mux, PathCancelGroupMsgSend, http.MethodPost, scopeContact, s.serveCancelGroupMsgSend)
	s.handle(mux, PathGroupMsgListV2, http.MethodPost, scopeContact, s.serveGroupMsgList)
	s.handle(mux, PathAddContactWay, http.MethodPost, scopeContact, s.serveAddContactWay)
	s.handle(mux, PathTransferCustomer, http.MethodPost, scopeContact, s.serveTransfer(false))
	s.handle(mux, PathResignedTransferCustomer, http.MethodPost, scopeContact, s.serveTransfer(true))
	s.handle(mux, PathResignedTransferResult, http.MethodPost, scopeContact, s.serveResignedTransferResult)
	s.handle(mux, PathGetCorpTagList, http.MethodPost, scopeContact, s.serveGetCorpTagList)
	s.handle(mux, PathAddCorpTag, http.MethodPost, scopeContact, s.serveAddCorpTag)
	s.handle(mux, PathEditCorpTag, http.MethodPost, scopeContact, s.serveEditCorpTag)
	s.handle(mux, PathDelCorpTag, http.MethodPost, scopeContact, s.serveDelCorpTag)
	s.handle(mux, PathMarkTag, http.MethodPost, scopeContact, s.serveMarkTag)
	s.handle(mux, PathGroupChatGet, http.MethodPost, scopeContact, s.serveGroupChatGet)
	s.handle(mux, PathGroupChatList, http.MethodPost, scopeContact, s.serveGroupChatList)
	s.handle(mux, PathGroupWelcomeTemplate, http.MethodPost, scopeContact, s.serveGroupWelcomeTemplate)
	s.handle(mux, PathCreateLink, http.MethodPost, scopeContact, s.serveCreateLink)
	s.handle(mux, PathListLink, http.MethodPost, scopeContact, s.serveListLink)
	s.handle(mux, PathGetLink, http.MethodPost, scopeContact, s.serveGetLink)
	s.handle(mux, PathAcquisitionQuota, http.MethodGet, scopeContact, s.serveAcquisitionQuota)
	s.handle(mux, PathAddMomentTask, http.MethodPost, scopeContact, s.serveAddMomentTask)
	s.handle(mux, PathGetMomentTaskResult, http.MethodGet, scopeContact, s.serveGetMomentTaskResult)
	s.handle(mux, PathGetMomentTask, http.MethodPost, scopeContact, s.serveGetMomentTask)
	s.handle(mux, PathGetMomentCustomerList, http.MethodPost, scopeContact, s.serveGetMomentCustomerList)
	s.handle(mux, PathKFSyncMsg, http.MethodPost, scopeApp, s.serveKFSync)
	s.handle(mux, PathKFSendMsg, http.MethodPost, scopeApp, s.serveKFSend)
	s.handle(mux, PathMessageSend, http.MethodPost, scopeApp, s.serveMessageSend)
	// Media may be uploaded with any of the corp's tokens; a media id
	// serves every app of the corp.
	s.handle(mux, PathMediaUpload, http.MethodPost, scopeApp|scopeContact, s.serveMediaUpload)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such endpoint on the fake WeCom", http.StatusNotFound)
	})
	s.handler = mux
	s.srv = httptest.NewServer(mux)
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// URL is the base URL standing in for https://qyapi.weixin.qq.com.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server. It is idempotent.
func (s *Server) Close() { s.srv.Close() }

// CorpID, AgentID, Secret and ContactSecret are the app's credentials.
func (s *Server) CorpID() string        { return s.corpID }
func (s *Server) AgentID() string       { return s.agentID }
func (s *Server) Secret() string        { return s.appSecret }
func (s *Server) ContactSecret() string { return s.contactSecret }

// Config returns a wecom.Config for the app this server fakes, with
// APIBase pointing at it and the callback settings of DefaultToken and
// DefaultEncodingAESKey. Brand is left for the caller.
func (s *Server) Config() wecom.Config {
	return wecom.Config{
		CorpID:         s.corpID,
		AgentID:        s.agentID,
		Secret:         s.appSecret,
		ContactSecret:  s.contactSecret,
		Token:          DefaultToken,
		EncodingAESKey: DefaultEncodingAESKey,
		APIBase:        s.srv.URL,
	}
}

// ---- recorded data ----

func findTestdata() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "..", "testdata", "api")
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "adapters", "wecom", "testdata", "api"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s", wd)
		}
	}
}

func (s *Server) loadTestdata() error {
	if s.dataDir == "" {
		dir, err := findTestdata()
		if err != nil {
			return fmt.Errorf("finding testdata/api: %w", err)
		}
		s.dataDir = dir
	}
	files, err := filepath.Glob(filepath.Join(s.dataDir, "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no recorded responses in %s", s.dataDir)
	}
	s.data = make(map[string]json.RawMessage, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return fmt.Errorf("%s is not JSON", f)
		}
		s.data[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	var msgs map[string]string
	if err := json.Unmarshal(s.data["errors"], &msgs); err != nil {
		return fmt.Errorf("reading errors.json: %w", err)
	}
	s.errmsgs = make(map[int]string, len(msgs))
	for k, v := range msgs {
		code, err := strconv.Atoi(k)
		if err != nil {
			return fmt.Errorf("errors.json: code %q: %w", k, err)
		}
		s.errmsgs[code] = v
	}
	return nil
}

// Recorded returns a recorded response of testdata/api by file name
// without .json (e.g. "externalcontact_get").
func (s *Server) Recorded(name string) json.RawMessage {
	return slices.Clone(s.data[name])
}

// recorded decodes a recorded response for the fake to fill in.
func (s *Server) recorded(name string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal(s.data[name], &m); err != nil || m == nil {
		m = map[string]any{"errcode": 0, "errmsg": "ok"}
	}
	return m
}

// ---- plumbing ----

// apiError is an errcode the handler answers with.
type apiError struct {
	code int
	msg  string
}

func errorf(code int, format string, args ...any) *apiError {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func codeErr(code int) *apiError { return &apiError{code: code} }

func (s *Server) errmsg(e *apiError) string {
	msg := e.msg
	if msg == "" {
		msg = s.errmsgs[e.code]
	}
	if msg == "" {
		msg = "error"
	}
	s.seq++
	hint := fmt.Sprintf("%d_%d_%s", s.now().Unix(), s.seq, randomHex(8))
	return fmt.Sprintf("%s, hint: [%s], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e=%d", msg, hint, e.code)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// handler serves one endpoint once the token is checked; it runs with s.mu
// held and returns the success body or an error.
type handler func(r *http.Request, body []byte) (map[string]any, *apiError)

func (s *Server) handle(mux *http.ServeMux, path, method string, need scope, h handler) {
	mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil {
			var err error
			body, err = readAll(r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		s.mu.Lock()
		d := s.delays[path].draw()
		s.mu.Unlock()
		if d.before > 0 {
			time.Sleep(d.before)
			if r.Context().Err() != nil {
				// The client went away while the request was in transit:
				// it never reached WeCom.
				return
			}
		}
		if d.after > 0 {
			// The answer is written after the delay, the work is done
			// before it: a client that gives up (or dies) meanwhile has
			// had its request carried out without learning it.
			buf, out := &delayedWriter{header: w.Header()}, w
			defer func() {
				time.Sleep(d.after)
				buf.flush(out)
			}()
			w = buf
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		call := Call{Method: r.Method, Path: path, At: s.now()}
		f := s.takeFailure(path)
		if f != nil && f.after {
			// Carried out, but the answer is lost: an HTTP failure
			// instead of the body.
			w = &lostAnswer{ResponseWriter: w, status: f.status}
			f = nil
		}
		if f != nil {
			if f.status != 0 {
				call.Errcode = -2
				s.calls = append(s.calls, call)
				http.Error(w, http.StatusText(f.status), f.status)
				return
			}
			s.answerError(w, &call, &apiError{code: f.code, msg: f.msg})
			return
		}
		if s.overRate(path) {
			s.rateLimited++
			s.answerError(w, &call, errorf(CodeFreqLimit, "api freq out of limit"))
			return
		}
		if r.Method != method {
			call.Errcode = -2
			s.calls = append(s.calls, call)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if e := s.checkToken(r.URL.Query().Get("access_token"), need); e != nil {
			s.answerError(w, &call, e)
			return
		}
		out, e := h(r, body)
		if e != nil {
			s.answerError(w, &call, e)
			return
		}
		out["errcode"], out["errmsg"] = 0, "ok"
		s.calls = append(s.calls, call)
		writeJSON(w, out)
	})
}

func readAll(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	// Room for media/upload's largest file (20 MB) and its form.
	_, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, maxFileBytes+1<<20))
	return buf.Bytes(), err
}

func (s *Server) answerError(w http.ResponseWriter, call *Call, e *apiError) {
	call.Errcode = e.code
	s.calls = append(s.calls, *call)
	writeJSON(w, map[string]any{"errcode": e.code, "errmsg": s.errmsg(e)})
}

// decode reads a JSON body strictly: unknown fields and wrong types are
// WeCom's "wrong json format".
func decode(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(CodeInvalidParameter, "empty body, Warning: wrong json format.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(CodeInvalidParameter, "invalid json: %s, Warning: wrong json format.", strings.ReplaceAll(err.Error(), `"`, "'"))
	}
	if dec.More() {
		return errorf(CodeInvalidParameter, "trailing data, Warning: wrong json format.")
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomToken() string {
	b := make([]byte, 72)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- failures ----

// FailNext makes the next n calls of path (a Path* constant; "" for any
// path, gettoken included) answer errcode with errmsg (default: the
// message of errors.json), before the access token is looked at.
func (s *Server) FailNext(path string, n int, errcode int, errmsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{path: path, n: n, code: errcode, msg: errmsg})
}

// FailHTTPNext makes the next n calls of path ("" for any) answer the HTTP
// status (e.g. 500, 502) with a non-JSON body.
func (s *Server) FailHTTPNext(path string, n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{path: path, n: n, status: status})
}

// FailHTTPAfterNext makes the next n calls of path ("" for any) do their
// work and then answer the HTTP status (e.g. 502) instead of their body,
// as when a proxy or the network loses WeCom's answer: the caller cannot
// tell the call was carried out.
func (s *Server) FailHTTPAfterNext(path string, n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{path: path, n: n, status: status, after: true})
}

// lostAnswer replaces a handler's answer with an HTTP error.
type lostAnswer struct {
	http.ResponseWriter
	status  int
	written bool
}

func (l *lostAnswer) WriteHeader(int) {}

func (l *lostAnswer) Write([]byte) (int, error) {
	if !l.written {
		l.written = true
		http.Error(l.ResponseWriter, http.StatusText(l.status), l.status)
	}
	return 0, nil
}

// FailRandomly makes a fraction of all calls (gettoken included) fail
// before they do anything, as a flaky network and a busy platform do:
// in turn a frequency limit (45009), system busy (-1), an HTTP 502 and an
// HTTP 504 (a gateway timeout). seed makes the sequence repeatable; rate 0
// stops it.
func (s *Server) FailRandomly(rate float64, seed int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failRate, s.failRand = rate, mathrand.New(mathrand.NewSource(seed))
}

// RandomFailures counts the calls FailRandomly failed.
func (s *Server) RandomFailures() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failCount
}

func (s *Server) takeFailure(path string) *failure {
	if s.failRate > 0 && s.failRand.Float64() < s.failRate {
		s.failCount++
		switch s.failCount % 4 {
		case 0:
			return &failure{code: CodeFreqLimit, msg: "api freq out of limit"}
		case 1:
			return &failure{code: CodeSystemBusy, msg: "system busy"}
		case 2:
			return &failure{status: http.StatusBadGateway}
		default:
			return &failure{status: http.StatusGatewayTimeout}
		}
	}
	for i, f := range s.failures {
		if f.path != "" && f.path != path {
			continue
		}
		f.applied++
		if f.applied >= f.n {
			s.failures = slices.Delete(s.failures, i, i+1)
		}
		return f
	}
	return nil
}

// Calls returns every request received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallCount returns how many requests path received.
func (s *Server) CallCount(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Path == path {
			n++
		}
	}
	return n
}

// ---- tokens ----

// TokenRequests returns how many gettoken calls the server answered,
// successful or not.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenRequests
}

// TokensIssued returns how many distinct tokens gettoken issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokensIssued
}

// ExpireTokens expires every token issued so far: calls with them answer
// 42001, and gettoken issues new ones.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		t.expired = true
	}
	clear(s.current)
}

// IssuedTokens returns every token issued so far, for tests that check
// tokens do not leak into errors or logs.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tokens))
	for t := range s.tokens {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (s *Server) secretScope(secret string) scope {
	var sc scope
	if secret == s.appSecret {
		sc |= scopeApp
	}
	if secret == s.contactSecret {
		sc |= scopeContact
	}
	return sc
}

func (s *Server) serveGetToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenRequests++
	call := Call{Method: r.Method, Path: PathGetToken, At: s.now()}
	if f := s.takeFailure(PathGetToken); f != nil {
		if f.status != 0 {
			call.Errcode = -2
			s.calls = append(s.calls, call)
			http.Error(w, http.StatusText(f.status), f.status)
			return
		}
		s.answerError(w, &call, &apiError{code: f.code, msg: f.msg})
		return
	}
	q := r.URL.Query()
	secret := q.Get("corpsecret")
	switch {
	case q.Get("corpid") != s.corpID:
		s.answerError(w, &call, codeErr(CodeInvalidCorpID))
		return
	case secret == "":
		s.answerError(w, &call, codeErr(CodeSecretMissing))
		return
	case s.secretScope(secret) == 0:
		s.answerError(w, &call, codeErr(CodeInvalidCredential))
		return
	}
	now := s.now()
	tok, ok := s.current[secret]
	if info := s.tokens[tok]; !ok || info == nil || info.expired || !now.Before(info.expires) {
		tok = randomToken()
		s.tokens[tok] = &tokenInfo{scope: s.secretScope(secret), expires: now.Add(s.tokenTTL)}
		s.current[secret] = tok
		s.tokensIssued++
	}
	out := s.recorded("gettoken")
	out["errcode"], out["errmsg"] = 0, "ok"
	out["access_token"] = tok
	out["expires_in"] = int(s.tokens[tok].expires.Sub(now) / time.Second)
	s.calls = append(s.calls, call)
	writeJSON(w, out)
}

func (s *Server) checkToken(tok string, need scope) *apiError {
	if tok == "" {
		return codeErr(CodeTokenMissing)
	}
	info := s.tokens[tok]
	switch {
	case info == nil:
		return codeErr(CodeInvalidToken)
	case info.expired || !s.now().Before(info.expires):
		return codeErr(CodeTokenExpired)
	case info.scope&need == 0:
		return codeErr(CodeAPIForbidden)
	}
	return nil
}

// ---- employees ----

// AddEmployees makes userids known employees. As long as none is added,
// every userid is taken for an employee; after that, the others are
// invalid (message/send lists them in invaliduser, add_contact_way and
// the transfers answer 40003).
func (s *Server) AddEmployees(userIDs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range userIDs {
		s.employees[u] = true
	}
}

func (s *Server) isEmployee(userID string) bool {
	return userID != "" && (len(s.employees) == 0 || s.employees[userID])
}
