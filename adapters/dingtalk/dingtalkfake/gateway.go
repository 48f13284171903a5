package dingtalkfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Default credentials and ids of the fakes. A Gateway and an OpenAPI made
// with default options accept the same app credentials.
const (
	DefaultClientID     = "dingfakeclientid0001"
	DefaultClientSecret = "fake-client-secret"
	DefaultCorpID       = "dingfakecorpid0001"
	DefaultAppID        = "f1a2b3c4-0000-4000-8000-00000000f00d"
)

// Paths served by the Gateway.
const (
	PathConnectionsOpen = "/v1.0/gateway/connections/open"
	PathConnect         = "/connect"
)

// Option configures a Gateway.
type Option func(*Gateway)

// WithCredential sets the clientId and clientSecret connections/open
// accepts. Default DefaultClientID and DefaultClientSecret.
func WithCredential(clientID, clientSecret string) Option {
	return func(g *Gateway) { g.clientID, g.clientSecret = clientID, clientSecret }
}

// WithCorpID sets the eventCorpId of pushed events and the chatbotCorpId
// of bot messages. Default DefaultCorpID.
func WithCorpID(corpID string) Option {
	return func(g *Gateway) { g.corpID = corpID }
}

// WithAppID sets the appId header of CALLBACK frames and the
// eventUnifiedAppId of events. Default DefaultAppID.
func WithAppID(appID string) Option {
	return func(g *Gateway) { g.appID = appID }
}

// WithMaxInFlight sets how many frames may await their ack on one
// connection. Default 1 (see the package comment for why).
func WithMaxInFlight(n int) Option {
	return func(g *Gateway) {
		if n > 0 {
			g.maxInFlight = n
		}
	}
}

// WithAckTimeout sets how long a frame may await its ack before the
// gateway stops waiting and sends the next one. The frame stays un-acked
// and is delivered again on the next connection. Default 5s.
func WithAckTimeout(d time.Duration) Option {
	return func(g *Gateway) {
		if d > 0 {
			g.ackTimeout = d
		}
	}
}

// WithDisconnectGrace sets how long after a SYSTEM disconnect frame the
// gateway closes the connection if the client has not. Default 10s, as
// documented for the real gateway.
func WithDisconnectGrace(d time.Duration) Option {
	return func(g *Gateway) {
		if d > 0 {
			g.disconnectGrace = d
		}
	}
}

// WithTicketTTL sets how long a ticket from connections/open may be used
// to connect. Default 90s.
func WithTicketTTL(d time.Duration) Option {
	return func(g *Gateway) {
		if d > 0 {
			g.ticketTTL = d
		}
	}
}

// WithOpenAPI serves o's endpoints on the gateway's host as well, as
// api.dingtalk.com serves both. Session webhook URLs still point at o.URL.
func WithOpenAPI(o *OpenAPI) Option {
	return func(g *Gateway) { g.api = o }
}

// Gateway is a fake DingTalk stream-mode gateway. It is safe for
// concurrent use.
type Gateway struct {
	srv             *httptest.Server
	api             *OpenAPI
	clientID        string
	clientSecret    string
	corpID          string
	appID           string
	maxInFlight     int
	ackTimeout      time.Duration
	disconnectGrace time.Duration
	ticketTTL       time.Duration
	upgrader        websocket.Upgrader

	wg sync.WaitGroup // connection goroutines

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every state change
	closed       bool
	seq          int
	records      map[string]*record
	pending      []*record // data frames awaiting a connection, in order
	conns        []*conn   // open connections, oldest first
	connSeq      int
	accepted     int
	tickets      map[string]*ticket
	opens        []OpenRequest
	openFailures []openFailure
	protoErrs    []error
}

type record struct {
	seq        int
	frame      Frame
	system     bool  // SYSTEM frames are tied to one connection
	conn       *conn // connection it was last delivered on, while un-acked
	pending    bool
	acked      bool
	acks       []Ack
	deliveries int
	failed     error // set when a SYSTEM frame's connection went away
}

type conn struct {
	id       int
	ws       *websocket.Conn
	subs     map[Subscription]bool
	control  []*record             // SYSTEM frames to send, in order
	inflight map[*record]time.Time // ack deadlines
	unacked  map[*record]bool      // delivered here, not acked yet
	draining bool                  // disconnect queued: no new frames
	gone     bool
	grace    *time.Timer
	wake     chan struct{}
	done     chan struct{}
}

type ticket struct {
	subs    []Subscription
	expires time.Time
	used    bool
}

type openFailure struct {
	status  int
	code    string
	message string
}

// New starts a Gateway. If tb is not nil, the Gateway is closed when the
// test ends; otherwise the caller must call Close.
func New(tb testing.TB, opts ...Option) *Gateway {
	g := &Gateway{
		clientID:        DefaultClientID,
		clientSecret:    DefaultClientSecret,
		corpID:          DefaultCorpID,
		appID:           DefaultAppID,
		maxInFlight:     1,
		ackTimeout:      5 * time.Second,
		disconnectGrace: 10 * time.Second,
		ticketTTL:       90 * time.Second,
		upgrader:        websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		changed:         make(chan struct{}),
		records:         make(map[string]*record),
		tickets:         make(map[string]*ticket),
	}
	for _, opt := range opts {
		opt(g)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(PathConnectionsOpen, g.serveOpen)
	mux.HandleFunc(PathConnect, g.serveConnect)
	mux.HandleFunc("/", g.serveOther)
	// Assigned before it starts: handlers read g.srv.URL, and a client in
	// another process gives the race detector no other ordering.
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.Start()
	if tb != nil {
		tb.Cleanup(g.Close)
	}
	return g
}

// URL returns the gateway's base URL, for client.WithOpenApiHost.
func (g *Gateway) URL() string { return g.srv.URL }

// ClientID returns the clientId the gateway accepts.
func (g *Gateway) ClientID() string { return g.clientID }

// ClientSecret returns the clientSecret the gateway accepts.
func (g *Gateway) ClientSecret() string { return g.clientSecret }

// CorpID returns the corp id put into events and bot messages.
func (g *Gateway) CorpID() string { return g.corpID }

// Close drops every connection and stops the gateway. It is idempotent.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	conns := slices.Clone(g.conns)
	g.mu.Unlock()
	for _, c := range conns {
		g.dropConn(c)
	}
	g.srv.Close()
	g.wg.Wait()
}

// PushCallback queues a CALLBACK frame on topic with data (a string or
// []byte is sent as is, anything else as JSON) and returns its messageId.
func (g *Gateway) PushCallback(topic string, data any) string {
	return g.push(Frame{
		SpecVersion: "1.0",
		Type:        TypeCallback,
		Headers: map[string]string{
			HeaderTopic:       topic,
			HeaderContentType: ContentTypeJSON,
			HeaderAppID:       g.appID,
		},
		Data: encodeData(data),
	})
}

// PushBotMessage queues a robot message and returns the frame's
// messageId. It fills in what m leaves empty: MsgID, CreateAt, Msgtype
// ("text" when Text is set), ConversationType ("1"), RobotCode (the
// clientId), ChatbotCorpID, SenderCorpID, SenderID (from SenderStaffID)
// and, when the gateway was made WithOpenAPI, a session webhook valid for
// 90 minutes.
func (g *Gateway) PushBotMessage(m BotMessage) string {
	now := time.Now()
	if m.MsgID == "" {
		m.MsgID = "msg" + randomHex(12)
	}
	if m.CreateAt == 0 {
		m.CreateAt = now.UnixMilli()
	}
	if m.Msgtype == "" && m.Text != nil {
		m.Msgtype = "text"
	}
	if m.ConversationType == "" {
		m.ConversationType = "1"
	}
	if m.RobotCode == "" {
		m.RobotCode = g.clientID
	}
	if m.ChatbotCorpID == "" {
		m.ChatbotCorpID = g.corpID
	}
	if m.SenderCorpID == "" && m.SenderStaffID != "" {
		m.SenderCorpID = g.corpID
	}
	if m.SenderID == "" && m.SenderStaffID != "" {
		m.SenderID = "$:LWCP_v1:$" + m.SenderStaffID
	}
	if m.SessionWebhook == "" && g.api != nil {
		url, exp := g.api.NewSessionWebhook(m.ConversationID, 90*time.Minute)
		m.SessionWebhook, m.SessionWebhookExpiredTime = url, exp.UnixMilli()
	}
	return g.PushCallback(BotTopic, m)
}

// PushEvent queues an EVENT frame of eventType with data and returns its
// messageId. The eventId header is fresh; read it with Frame.
func (g *Gateway) PushEvent(eventType string, data any) string {
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	return g.push(Frame{
		SpecVersion: "1.0",
		Type:        TypeEvent,
		Headers: map[string]string{
			HeaderTopic:             EventTopic,
			HeaderContentType:       ContentTypeJSON,
			HeaderEventType:         eventType,
			HeaderEventID:           randomHex(16),
			HeaderEventCorpID:       g.corpID,
			HeaderEventBornTime:     now,
			HeaderEventUnifiedAppID: g.appID,
		},
		Data: encodeData(data),
	})
}

// Push queues f as it is, apart from the messageId and time headers the
// gateway sets, and returns its messageId. Use it for frames the other
// Push methods do not build.
func (g *Gateway) Push(f Frame) string {
	f = f.clone()
	if f.SpecVersion == "" {
		f.SpecVersion = "1.0"
	}
	return g.push(f)
}

func (g *Gateway) push(f Frame) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.newRecordLocked(f, false)
	r.pending = true
	g.pending = append(g.pending, r)
	g.wakeAllLocked()
	g.notifyLocked()
	return r.frame.MessageID()
}

func (g *Gateway) newRecordLocked(f Frame, system bool) *record {
	g.seq++
	now := time.Now()
	id := fmt.Sprintf("%s_%x_%x_%s", randomHex(4), g.seq, now.UnixMilli(), randomHex(2))
	f.Headers[HeaderMessageID] = id
	f.Headers[HeaderTime] = strconv.FormatInt(now.UnixMilli(), 10)
	r := &record{seq: g.seq, frame: f, system: system}
	g.records[id] = r
	return r
}

// Redeliver queues the frame with messageID again, as the real gateway may
// deliver a frame twice. A frame that is still pending or awaiting its ack
// is left alone. WaitAck then waits for the new delivery's ack.
func (g *Gateway) Redeliver(messageID string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.records[messageID]
	if r == nil {
		return fmt.Errorf("dingtalkfake: redelivering %s: unknown messageId", messageID)
	}
	if r.system {
		return fmt.Errorf("dingtalkfake: redelivering %s: SYSTEM frames are not redelivered", messageID)
	}
	if !r.acked {
		return nil
	}
	r.acked = false
	r.pending = true
	g.pending = append(g.pending, r)
	g.wakeAllLocked()
	g.notifyLocked()
	return nil
}

// Ping sends a SYSTEM ping to the newest connection, once there is one,
// and waits for the client's answer.
func (g *Gateway) Ping(ctx context.Context) (Ack, error) {
	var c *conn
	err := g.waitFor(ctx, func() (bool, error) {
		c = g.newestLocked()
		return c != nil, nil
	}, func() string { return "waiting for a connection to ping" })
	if err != nil {
		return Ack{}, err
	}
	g.mu.Lock()
	if c.gone || c.draining {
		g.mu.Unlock()
		return Ack{}, errors.New("dingtalkfake: pinging: connection went away")
	}
	r := g.newRecordLocked(Frame{
		SpecVersion: "1.0",
		Type:        TypeSystem,
		Headers:     map[string]string{HeaderTopic: PingTopic, HeaderContentType: ContentTypeJSON},
		Data:        encodeData(map[string]string{"opaque": newUUID()}),
	}, true)
	r.conn = c
	c.control = append(c.control, r)
	wake(c)
	id := r.frame.MessageID()
	g.mu.Unlock()
	return g.WaitAck(ctx, id)
}

// Disconnect sends a SYSTEM disconnect frame to every connection, once
// the frames in flight on it are acked. From now on the gateway sends
// nothing else on those connections (Connections no longer counts them) and
// closes them a grace period after the frame, unless the client closes
// first.
func (g *Gateway) Disconnect() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		if c.draining {
			continue
		}
		f := Frame{
			SpecVersion: "1.0",
			Type:        TypeSystem,
			Headers:     map[string]string{HeaderTopic: DisconnectTopic, HeaderContentType: ContentTypeJSON},
			Data:        encodeData(map[string]string{"reason": "connection is expired"}),
		}
		// A disconnect frame has no messageId: the client does not ack it.
		c.control = append(c.control, &record{frame: f, system: true, conn: c})
		c.draining = true
		wake(c)
	}
}

// Drop closes every connection abruptly, without a close handshake, as a
// network failure would. Frames in flight on them are delivered again on
// the next connection.
func (g *Gateway) Drop() {
	g.mu.Lock()
	conns := slices.Clone(g.conns)
	g.mu.Unlock()
	for _, c := range conns {
		g.dropConn(c)
	}
}

// FailNextOpens makes the next n calls of connections/open fail with the
// HTTP status and error code given.
func (g *Gateway) FailNextOpens(n, status int, code, message string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for range n {
		g.openFailures = append(g.openFailures, openFailure{status, code, message})
	}
}

// WaitAck waits until the frame with messageID is acked and returns the
// ack (the latest, when the frame was redelivered).
func (g *Gateway) WaitAck(ctx context.Context, messageID string) (Ack, error) {
	var ack Ack
	err := g.waitFor(ctx, func() (bool, error) {
		r := g.records[messageID]
		if r == nil {
			return false, fmt.Errorf("dingtalkfake: waiting for ack of %s: unknown messageId", messageID)
		}
		if r.acked {
			ack = r.acks[len(r.acks)-1]
			return true, nil
		}
		if r.failed != nil {
			return false, fmt.Errorf("dingtalkfake: waiting for ack of %s: %w", messageID, r.failed)
		}
		return false, nil
	}, func() string { return g.describeLocked(messageID) })
	return ack, err
}

// WaitConnected waits until at least one client is connected.
func (g *Gateway) WaitConnected(ctx context.Context) error {
	return g.waitFor(ctx, func() (bool, error) {
		return g.liveLocked() > 0, nil
	}, func() string { return "waiting for a connection" })
}

// WaitNoConnections waits until no WebSocket connection is open, draining
// ones included: the client has closed, or was dropped.
func (g *Gateway) WaitNoConnections(ctx context.Context) error {
	return g.waitFor(ctx, func() (bool, error) {
		return len(g.conns) == 0, nil
	}, func() string { return fmt.Sprintf("waiting for %d connection(s) to close", len(g.conns)) })
}

// WaitAccepted waits until n WebSocket connections have been accepted in
// all, counting closed ones.
func (g *Gateway) WaitAccepted(ctx context.Context, n int) error {
	return g.waitFor(ctx, func() (bool, error) {
		return g.accepted >= n, nil
	}, func() string { return fmt.Sprintf("waiting for connection %d (accepted %d)", n, g.accepted) })
}

func (g *Gateway) waitFor(ctx context.Context, done func() (bool, error), state func() string) error {
	for {
		g.mu.Lock()
		ok, err := done()
		ch := g.changed
		var desc string
		if !ok && err == nil && ctx.Err() != nil {
			desc = state()
		}
		g.mu.Unlock()
		if ok || err != nil {
			return err
		}
		if desc != "" {
			return fmt.Errorf("dingtalkfake: %s: %w", desc, ctx.Err())
		}
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

// describeLocked says why a frame has not been acked, for timeout errors.
func (g *Gateway) describeLocked(messageID string) string {
	r := g.records[messageID]
	if r == nil {
		return "waiting for ack of unknown " + messageID
	}
	switch {
	case r.pending && g.liveLocked() == 0:
		return fmt.Sprintf("frame %s is pending: no client connected", messageID)
	case r.pending && !g.subscribedLocked(r):
		return fmt.Sprintf("frame %s is pending: no connection subscribed to %s %s", messageID, r.frame.Type, r.frame.Topic())
	case r.pending:
		return fmt.Sprintf("frame %s is pending behind frames in flight", messageID)
	default:
		return fmt.Sprintf("frame %s was delivered %d time(s) and not acked", messageID, r.deliveries)
	}
}

// Frame returns the frame pushed with messageID.
func (g *Gateway) Frame(messageID string) (Frame, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.records[messageID]
	if r == nil {
		return Frame{}, false
	}
	return r.frame.clone(), true
}

// Acks returns every ack received for messageID, oldest first.
func (g *Gateway) Acks(messageID string) []Ack {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.records[messageID]; r != nil {
		return slices.Clone(r.acks)
	}
	return nil
}

// Deliveries returns how many times the frame with messageID was sent.
func (g *Gateway) Deliveries(messageID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.records[messageID]; r != nil {
		return r.deliveries
	}
	return 0
}

// Pending returns how many frames wait for a connection.
func (g *Gateway) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// Connections returns how many connections are open and not draining
// after a disconnect frame.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.liveLocked()
}

// Accepted returns how many WebSocket connections were accepted in all.
func (g *Gateway) Accepted() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.accepted
}

// OpenRequests returns the successful connections/open requests, oldest
// first.
func (g *Gateway) OpenRequests() []OpenRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.opens)
}

// ProtocolErrors returns what clients sent that breaks the protocol:
// malformed acks, acks without a messageId or for unknown frames, a wrong
// contentType. A correct client leaves it empty.
func (g *Gateway) ProtocolErrors() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.protoErrs)
}

func (g *Gateway) liveLocked() int {
	n := 0
	for _, c := range g.conns {
		if !c.draining {
			n++
		}
	}
	return n
}

func (g *Gateway) newestLocked() *conn {
	for i := len(g.conns) - 1; i >= 0; i-- {
		if !g.conns[i].draining {
			return g.conns[i]
		}
	}
	return nil
}

func (g *Gateway) subscribedLocked(r *record) bool {
	for _, c := range g.conns {
		if !c.draining && c.subs[Subscription{r.frame.Type, r.frame.Topic()}] {
			return true
		}
	}
	return false
}

func (g *Gateway) notifyLocked() {
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *Gateway) wakeAllLocked() {
	for _, c := range g.conns {
		wake(c)
	}
}

func wake(c *conn) {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (g *Gateway) protoErrorLocked(format string, args ...any) {
	g.protoErrs = append(g.protoErrs, fmt.Errorf("dingtalkfake: "+format, args...))
}

func (g *Gateway) serveOpen(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeAPIError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "method not allowed")
		return
	}
	var req openRequestWire
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeAPIError(w, http.StatusBadRequest, "InvalidParameter", "malformed JSON body")
		return
	}
	g.mu.Lock()
	if len(g.openFailures) > 0 {
		f := g.openFailures[0]
		g.openFailures = g.openFailures[1:]
		g.mu.Unlock()
		writeAPIError(w, f.status, f.code, f.message)
		return
	}
	if req.ClientID != g.clientID || req.ClientSecret != g.clientSecret {
		g.mu.Unlock()
		writeAPIError(w, http.StatusUnauthorized, "authFailed", "鉴权失败")
		return
	}
	tk := newUUID()
	g.tickets[tk] = &ticket{subs: req.Subscriptions, expires: time.Now().Add(g.ticketTTL)}
	g.opens = append(g.opens, OpenRequest{
		ClientID:      req.ClientID,
		Subscriptions: slices.Clone(req.Subscriptions),
		UA:            req.UA,
		LocalIP:       req.LocalIP,
		Extras:        req.Extras,
	})
	g.notifyLocked()
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, openResponseWire{
		Endpoint: "ws" + strings.TrimPrefix(g.srv.URL, "http") + PathConnect,
		Ticket:   tk,
	})
}

func (g *Gateway) serveConnect(w http.ResponseWriter, r *http.Request) {
	tk := r.URL.Query().Get("ticket")
	g.mu.Lock()
	t := g.tickets[tk]
	ok := t != nil && !t.used && time.Now().Before(t.expires)
	if t != nil {
		t.used = true
	}
	g.mu.Unlock()
	if !ok {
		writeAPIError(w, http.StatusUnauthorized, "authFailed", "ticket is invalid, used or expired")
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &conn{
		ws:       ws,
		subs:     make(map[Subscription]bool),
		inflight: make(map[*record]time.Time),
		unacked:  make(map[*record]bool),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	for _, s := range t.subs {
		c.subs[s] = true
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = ws.Close()
		return
	}
	g.connSeq++
	c.id = g.connSeq
	g.accepted++
	g.conns = append(g.conns, c)
	g.wg.Add(2)
	g.notifyLocked()
	g.mu.Unlock()

	go g.sendLoop(c)
	defer g.wg.Done()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			g.dropConn(c)
			return
		}
		g.handleAck(msg)
	}
}

// serveOther serves the OpenAPI endpoints when the gateway was made
// WithOpenAPI, and 404 otherwise.
func (g *Gateway) serveOther(w http.ResponseWriter, r *http.Request) {
	if g.api != nil {
		g.api.mux.ServeHTTP(w, r)
		return
	}
	writeAPIError(w, http.StatusNotFound, "NotFound", "no such endpoint on the fake gateway")
}

func (g *Gateway) sendLoop(c *conn) {
	defer g.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		g.mu.Lock()
		if c.gone {
			g.mu.Unlock()
			return
		}
		now := time.Now()
		for r, deadline := range c.inflight {
			if !now.Before(deadline) {
				delete(c.inflight, r) // stays in c.unacked
			}
		}
		r := g.nextLocked(c)
		var payload []byte
		if r != nil {
			f := r.frame.clone()
			if f.Type == TypeCallback {
				f.Headers[HeaderConnectionID] = strconv.Itoa(c.id)
			}
			payload, _ = json.Marshal(f)
			switch {
			case r.frame.Topic() == DisconnectTopic && r.system:
				c.grace = time.AfterFunc(g.disconnectGrace, func() { g.dropConn(c) })
			default:
				r.deliveries++
				r.conn = c
				c.inflight[r] = now.Add(g.ackTimeout)
				if !r.system {
					c.unacked[r] = true
				}
			}
			g.notifyLocked()
		}
		wait := time.Hour
		for _, deadline := range c.inflight {
			wait = min(wait, deadline.Sub(now))
		}
		g.mu.Unlock()

		if r != nil {
			_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.ws.WriteMessage(websocket.TextMessage, payload); err != nil {
				g.dropConn(c)
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-c.wake:
		case <-timer.C:
		case <-c.done:
			return
		}
	}
}

// nextLocked picks the next frame to send on c, or nil.
func (g *Gateway) nextLocked(c *conn) *record {
	if len(c.inflight) >= g.maxInFlight {
		return nil
	}
	if len(c.control) > 0 {
		r := c.control[0]
		if r.frame.Topic() == DisconnectTopic && len(c.inflight) > 0 {
			return nil // let the client finish what it is handling
		}
		c.control = c.control[1:]
		return r
	}
	if c.draining {
		return nil
	}
	for i, r := range g.pending {
		if c.subs[Subscription{r.frame.Type, r.frame.Topic()}] {
			g.pending = slices.Delete(g.pending, i, i+1)
			r.pending = false
			return r
		}
	}
	return nil
}

func (g *Gateway) handleAck(msg []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var ack Ack
	if err := json.Unmarshal(msg, &ack); err != nil {
		g.protoErrorLocked("malformed ack %q: %v", msg, err)
		return
	}
	id := ack.MessageID()
	if id == "" {
		g.protoErrorLocked("ack without headers.messageId: %s", msg)
		return
	}
	r := g.records[id]
	if r == nil {
		g.protoErrorLocked("ack for unknown messageId %s: %s", id, msg)
		return
	}
	if ct := ack.Headers[HeaderContentType]; ct != ContentTypeJSON {
		g.protoErrorLocked("ack of %s has contentType %q, want %q", id, ct, ContentTypeJSON)
	}
	if ack.Code == 0 {
		g.protoErrorLocked("ack of %s has no code: %s", id, msg)
	}
	r.acks = append(r.acks, ack)
	r.acked = true
	if r.conn != nil {
		delete(r.conn.inflight, r)
		delete(r.conn.unacked, r)
		r.conn = nil
	}
	if r.pending { // a late ack after the frame was queued again
		r.pending = false
		g.pending = slices.DeleteFunc(g.pending, func(p *record) bool { return p == r })
	}
	g.wakeAllLocked()
	g.notifyLocked()
}

// dropConn closes c and queues its un-acked frames for the next
// connection. It is idempotent.
func (g *Gateway) dropConn(c *conn) {
	g.mu.Lock()
	if c.gone {
		g.mu.Unlock()
		return
	}
	c.gone = true
	close(c.done)
	if c.grace != nil {
		c.grace.Stop()
	}
	g.conns = slices.DeleteFunc(g.conns, func(x *conn) bool { return x == c })
	var requeue []*record
	for r := range c.unacked {
		r.conn = nil
		r.pending = true
		requeue = append(requeue, r)
	}
	for r := range c.inflight {
		if r.system {
			r.conn = nil
			r.failed = errors.New("connection closed before the client answered")
		}
	}
	for _, r := range c.control {
		r.failed = errors.New("connection closed before the frame was sent")
	}
	slices.SortFunc(requeue, func(a, b *record) int { return a.seq - b.seq })
	g.pending = append(requeue, g.pending...)
	g.wakeAllLocked()
	g.notifyLocked()
	g.mu.Unlock()
	_ = c.ws.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, code, message string) {
	rid := newRequestID()
	w.Header().Set("x-acs-request-id", rid)
	writeJSON(w, status, apiError{Code: code, RequestID: rid, Message: message})
}
