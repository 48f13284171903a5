package dingtalk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/open-dingtalk/dingtalk-stream-sdk-go/payload"

	"github.com/scrmgw/scrmgw/adapters"
)

const (
	// frameBuffer is how many frames read from the connection may wait
	// for the handler, and acks for the writer.
	frameBuffer = 16
	// frameWorkers is how many frames are recorded at once when the
	// gateway has several in flight.
	frameWorkers = 16
	// maxFrameBytes caps one incoming WebSocket message.
	maxFrameBytes = 4 << 20
)

// Run holds the stream-mode connection to DingTalk until ctx ends, and
// records every robot message and contact event it receives (see the
// package comment). It reconnects with backoff when the connection drops
// and when the gateway asks it to, and returns nil once ctx is done, the
// connection is closed and the frames already read are recorded (for at
// most a few seconds). Only one Run may be running at a time.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("dingtalk: Run is already running")
	}
	defer c.running.Store(false)

	bo := backoff{min: c.backoffMin, max: c.backoffMax}
	for {
		c.setState(StatusConnecting, nil)
		res := c.connectOnce(ctx)
		if ctx.Err() != nil {
			c.setState(StatusDisconnected, nil)
			c.log.Info("dingtalk stream stopped")
			return nil
		}
		healthy := res.up >= c.healthyAfter
		if healthy {
			bo.reset()
		}
		var wait time.Duration
		if !res.disconnect || !healthy {
			wait = bo.next()
		}
		c.setState(StatusDisconnected, res.err)
		if res.err != nil {
			level := slog.LevelWarn
			if errors.Is(res.err, adapters.ErrUnauthorized) {
				level = slog.LevelError // wrong credentials: retrying will not fix it
			}
			c.log.Log(ctx, level, "dingtalk stream connection failed; reconnecting",
				slog.Any("error", res.err), slog.Duration("up", res.up.Round(time.Millisecond)),
				slog.Duration("retry_in", wait.Round(time.Millisecond)))
		} else {
			c.log.Info("dingtalk stream: gateway asked to reconnect",
				slog.Duration("up", res.up.Round(time.Millisecond)), slog.Duration("retry_in", wait.Round(time.Millisecond)))
		}
		if !sleep(ctx, wait) {
			c.log.Info("dingtalk stream stopped")
			return nil
		}
	}
}

// session is how one connection ended.
type session struct {
	up         time.Duration // how long the WebSocket was up; 0 if never
	disconnect bool          // the gateway sent a SYSTEM disconnect
	err        error         // why it failed; nil for a disconnect or ctx ending
}

// connectOnce registers, dials and serves one connection until it ends.
func (c *Client) connectOnce(ctx context.Context) session {
	ep, err := c.openConnection(ctx)
	if err != nil {
		return session{err: err}
	}
	ws, err := c.dial(ctx, ep)
	if err != nil {
		return session{err: err}
	}
	start := time.Now()
	c.setState(StatusConnected, nil)
	c.log.Info("dingtalk stream connected", slog.String("endpoint", redactURL(ep.Endpoint)))
	disconnect, err := c.serve(ctx, ws)
	return session{up: time.Since(start), disconnect: disconnect, err: err}
}

// openConnection registers with connections/open and returns the
// WebSocket endpoint and its one-time ticket. Neither the secret nor the
// ticket ever appear in an error.
func (c *Client) openConnection(ctx context.Context) (*payload.ConnectionEndpointResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	body, err := json.Marshal(payload.ConnectionEndpointRequest{
		ClientId:      c.cfg.ClientID,
		ClientSecret:  c.cfg.ClientSecret,
		Subscriptions: subscriptions,
		UserAgent:     userAgent,
	})
	if err != nil {
		return nil, fmt.Errorf("registering stream connection: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.StreamHost+pathConnectionsOpen, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("registering stream connection: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("registering stream connection: %w", redactURLError(err))
	}
	defer resp.Body.Close()
	raw, err := readBody(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("registering stream connection: reading answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("registering stream connection: %w", failureFrom(resp.StatusCode, raw).apiError())
	}
	var ep payload.ConnectionEndpointResponse
	if err := json.Unmarshal(raw, &ep); err != nil {
		return nil, fmt.Errorf("registering stream connection: decoding answer: %w", err)
	}
	if err := ep.Valid(); err != nil {
		return nil, fmt.Errorf("registering stream connection: %w", err)
	}
	return &ep, nil
}

// dial opens the WebSocket with the ticket.
func (c *Client) dial(ctx context.Context, ep *payload.ConnectionEndpointResponse) (*websocket.Conn, error) {
	u, err := url.Parse(ep.Endpoint)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") {
		return nil, fmt.Errorf("dialling stream: endpoint %q is not a ws(s) URL", redactURL(ep.Endpoint))
	}
	q := u.Query()
	q.Set("ticket", ep.Ticket)
	u.RawQuery = q.Encode()

	d := websocket.Dialer{HandshakeTimeout: c.dialTimeout, Proxy: http.ProxyFromEnvironment}
	tr := c.http.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	if t, ok := tr.(*http.Transport); ok {
		d.Proxy = t.Proxy
		d.NetDialContext = t.DialContext
		if t.TLSClientConfig != nil {
			d.TLSClientConfig = t.TLSClientConfig.Clone()
		}
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	where := redactURL(ep.Endpoint)
	if err != nil {
		if resp != nil && resp.Body != nil {
			raw, _ := readBody(resp.Body)
			resp.Body.Close()
			return nil, fmt.Errorf("dialling stream %s: %w", where, failureFrom(resp.StatusCode, raw).apiError())
		}
		return nil, fmt.Errorf("dialling stream %s: %w", where, redactURLError(err))
	}
	ws.SetReadLimit(maxFrameBytes)
	return ws, nil
}

// serve runs one connection: a reader, a handler that records frames
// (up to frameWorkers at once), and a writer that alone writes to
// the connection (acks, pongs, keep-alive pings, the close frame). It
// returns once the connection has ended and every frame read from it has
// been handled.
//
// When ctx ends, the writer sends what acks are ready and then a close
// frame at once, so that the gateway stops pushing; the reader goes on
// reading until the gateway closes (at most closeWait), and whatever it
// reads is still recorded, within drainTimeout. Acks that were not ready
// by then cannot be sent after the close frame: events are delivered
// again (and deduplicated), robot messages are not, but they are recorded.
func (c *Client) serve(ctx context.Context, ws *websocket.Conn) (disconnect bool, err error) {
	frames := make(chan *payload.DataFrame, frameBuffer)
	out := make(chan *payload.DataFrameResponse, frameBuffer)
	closeReq := make(chan struct{})
	rg := &readGuard{ws: ws}

	// The handler's context outlives ctx by drainTimeout.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	type readResult struct {
		disconnect bool
		err        error
	}
	readDone := make(chan readResult, 1)
	go func() {
		d, err := c.readLoop(ws, rg, frames, out)
		close(frames)
		readDone <- readResult{d, err}
	}()
	handleDone := make(chan struct{})
	go func() {
		defer close(handleDone)
		// Up to frameWorkers frames are recorded at once (their
		// commits share the inbox's batches), each acked when it is
		// durable, as the vendor SDK handles each frame on its own.
		var wg sync.WaitGroup
		sem := make(chan struct{}, frameWorkers)
		for df := range frames {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if ack := c.handleFrame(hctx, df); ack != nil && df.GetMessageId() != "" {
					out <- ack
				}
			}()
		}
		wg.Wait()
	}()
	writeDone := make(chan error, 1)
	go func() { writeDone <- c.writeLoop(ws, out, closeReq) }()

	var drain *time.Timer
	startDrain := func() {
		if drain == nil {
			drain = time.AfterFunc(c.drainTimeout, hcancel)
		}
	}
	defer func() {
		if drain != nil {
			drain.Stop()
		}
	}()

	var rr readResult
	stopping := false
	select {
	case rr = <-readDone:
	case <-ctx.Done():
		stopping = true
		startDrain()
		close(closeReq)
		rg.closing(closeWait)
		rr = <-readDone
	}
	select {
	case <-handleDone:
	case <-ctx.Done():
		startDrain()
		<-handleDone
	}
	close(out)
	werr := <-writeDone
	if stopping {
		_ = ws.Close() // the reader read until the gateway closed, or gave up
	} else {
		closeGracefully(ws)
	}

	switch {
	case stopping || rr.disconnect:
		return rr.disconnect, nil
	case werr != nil:
		return false, werr
	}
	return false, rr.err
}

// closeWait bounds how long closing waits for the gateway to close its
// side.
const closeWait = time.Second

// closeGracefully sends a close frame and waits for the gateway to close
// its side, discarding what it still sends, before closing the
// connection. Closing a socket with unread data would reset it, and the
// gateway could lose the acks written last. It is used once the gateway
// sends nothing new: after a disconnect frame, or a broken connection.
func closeGracefully(ws *websocket.Conn) {
	deadline := time.Now().Add(closeWait)
	_ = ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
	nc := ws.NetConn()
	_ = nc.SetReadDeadline(deadline)
	_, _ = io.Copy(io.Discard, nc)
	_ = ws.Close()
}

// readGuard owns the read deadline: the reader pushes it ahead after
// every frame and pong until closing fixes it.
type readGuard struct {
	mu       sync.Mutex
	ws       *websocket.Conn
	isClosed bool
}

// extend pushes the read deadline d ahead, unless the connection is
// closing.
func (r *readGuard) extend(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isClosed {
		_ = r.ws.SetReadDeadline(time.Now().Add(d))
	}
}

// closing lets the reader read for d more at most.
func (r *readGuard) closing(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.isClosed = true
	_ = r.ws.SetReadDeadline(time.Now().Add(d))
}

func (r *readGuard) closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.isClosed
}

// readLoop reads frames until the connection ends (err is nil if it was
// closing) or a SYSTEM disconnect comes (disconnect is true). It answers
// pings itself, so that they are answered while the handler is busy, and
// hands everything else to the handler.
func (c *Client) readLoop(ws *websocket.Conn, rg *readGuard, frames chan<- *payload.DataFrame, out chan<- *payload.DataFrameResponse) (disconnect bool, err error) {
	ws.SetPongHandler(func(string) error {
		rg.extend(c.readTimeout)
		return nil
	})
	for {
		rg.extend(c.readTimeout)
		typ, msg, err := ws.ReadMessage()
		if err != nil {
			if rg.closed() {
				return false, nil
			}
			return false, fmt.Errorf("reading stream: %w", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		df, err := payload.DecodeDataFrame(msg)
		if err != nil || df.Headers == nil {
			c.log.Warn("dingtalk: ignoring undecodable stream frame", slog.Int("bytes", len(msg)))
			continue
		}
		if df.Type != typeSystem {
			frames <- df
			continue
		}
		switch df.GetTopic() {
		case topicPing:
			out <- pongAck(df)
		case topicDisconnect:
			var d struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal([]byte(df.Data), &d)
			c.log.Debug("dingtalk stream: disconnect frame", slog.String("reason", d.Reason))
			return true, nil
		default:
			c.log.Debug("dingtalk stream: ignoring SYSTEM frame", slog.String("topic", df.GetTopic()))
			if df.GetMessageId() != "" {
				out <- ackFor(df, payload.DataFrameResponseStatusCodeKHandlerNotFound, "not handled", "")
			}
		}
	}
}

// writeLoop writes acks until out is closed, and pings the gateway when
// idle. When closeReq is closed it writes the acks already queued and a
// close frame, and discards what comes after: nothing may follow a close
// frame. After a failed write it closes the connection, which ends the
// reader, and discards the rest: the gateway delivers frames that were
// not acked again.
func (c *Client) writeLoop(ws *websocket.Conn, out <-chan *payload.DataFrameResponse, closeReq <-chan struct{}) error {
	ping := time.NewTicker(c.pingInterval)
	defer ping.Stop()
	var failed error
	closed := false
	write := func(r *payload.DataFrameResponse) {
		if failed != nil || closed {
			c.log.Debug("dingtalk stream: ack not sent, connection closing or broken",
				slog.String("message_id", r.GetHeader(payload.DataFrameHeaderKMessageId)), slog.Int("code", r.Code))
			return
		}
		_ = ws.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		if err := ws.WriteJSON(r); err != nil {
			failed = fmt.Errorf("writing ack: %w", err)
			_ = ws.Close()
		}
	}
	for {
		select {
		case r, ok := <-out:
			if !ok {
				return failed
			}
			write(r)
		case <-closeReq:
			closeReq = nil
		flush:
			for {
				select {
				case r, ok := <-out:
					if !ok {
						break flush
					}
					write(r)
				default:
					break flush
				}
			}
			if failed == nil {
				_ = ws.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(c.writeTimeout))
			}
			closed = true
		case <-ping.C:
			if failed == nil && !closed {
				if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.writeTimeout)); err != nil {
					failed = fmt.Errorf("writing ping: %w", err)
					_ = ws.Close()
				}
			}
		}
	}
}

// handleFrame records a CALLBACK or EVENT frame and returns its ack.
func (c *Client) handleFrame(ctx context.Context, df *payload.DataFrame) *payload.DataFrameResponse {
	switch {
	case df.Type == typeCallback && df.GetTopic() == payload.BotMessageCallbackTopic:
		return c.handleBot(ctx, df)
	case df.Type == typeEvent:
		return c.handleEvent(ctx, df)
	}
	c.log.Debug("dingtalk stream: no handler for frame",
		slog.String("type", df.Type), slog.String("topic", df.GetTopic()), slog.String("message_id", df.GetMessageId()))
	return ackFor(df, payload.DataFrameResponseStatusCodeKHandlerNotFound, "not handled", "")
}

func (c *Client) handleBot(ctx context.Context, df *payload.DataFrame) *payload.DataFrameResponse {
	log := c.log.With(slog.String("message_id", df.GetMessageId()))
	in, m, err := decodeBot(df.Data)
	if err != nil {
		// Answering 500 would not bring a better copy: drop it, loudly.
		log.Error("dingtalk: dropping undecodable robot message", slog.Any("error", err))
		return ackFor(df, payload.DataFrameResponseStatusCodeKOK, "dropped: malformed", "")
	}
	in.Channel, in.Brand = c.key, c.cfg.Brand
	log = log.With(slog.String("msg_id", in.DedupKey))
	err = c.withRetries(ctx, log, func(ctx context.Context) error {
		in.From = adapters.PartyMember
		if m.SenderStaffId != "" {
			guide, err := c.guides.IsGuide(ctx, m.SenderStaffId)
			if err != nil {
				return fmt.Errorf("resolving sender: %w", err)
			}
			if guide {
				in.From = adapters.PartyGuide
			}
		}
		return c.recorder.Record(ctx, in)
	})
	if err != nil {
		log.Error("dingtalk: robot message not recorded; DingTalk will not deliver it again",
			slog.Any("error", err), slog.String("sender_id", in.SenderID))
		return botAck(df, false)
	}
	log.Debug("dingtalk: robot message recorded", slog.String("kind", in.Kind), slog.String("from", string(in.From)))
	return botAck(df, true)
}

func (c *Client) handleEvent(ctx context.Context, df *payload.DataFrame) *payload.DataFrameResponse {
	log := c.log.With(slog.String("message_id", df.GetMessageId()),
		slog.String("event_type", df.GetHeader("eventType")), slog.String("event_id", df.GetHeader("eventId")))
	ins, known, err := decodeOrgEvent(df)
	switch {
	case !known:
		log.Debug("dingtalk: ignoring event")
		return eventAck(df, true, "")
	case err != nil:
		log.Error("dingtalk: dropping undecodable event", slog.Any("error", err))
		return eventAck(df, true, "dropped: malformed")
	}
	for _, in := range ins {
		in.Channel, in.Brand = c.key, c.cfg.Brand
	}
	err = c.withRetries(ctx, log, func(ctx context.Context) error {
		for _, in := range ins {
			if err := c.recorder.Record(ctx, in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Error("dingtalk: event not recorded; asking DingTalk to deliver it again", slog.Any("error", err))
		return eventAck(df, false, "")
	}
	log.Debug("dingtalk: event recorded", slog.Int("users", len(ins)))
	return eventAck(df, true, "")
}

// withRetries calls f up to recordTries times, each with recordTimeout,
// backing off between attempts, while ctx lasts.
func (c *Client) withRetries(ctx context.Context, log *slog.Logger, f func(context.Context) error) error {
	delay := c.recordRetry
	var err error
	for i := range c.recordTries {
		if i > 0 {
			if !sleep(ctx, delay) {
				break
			}
			delay *= 2
		}
		actx, cancel := context.WithTimeout(ctx, c.recordTimeout)
		err = f(actx)
		cancel()
		if err == nil {
			return nil
		}
		log.Warn("dingtalk: recording failed", slog.Int("attempt", i+1), slog.Any("error", err))
		if ctx.Err() != nil {
			break
		}
	}
	return err
}

// backoff is exponential backoff with jitter: attempt n waits a random
// time in [d/2, d], d = min·2ⁿ capped at max.
type backoff struct {
	min, max time.Duration
	attempt  int
}

func (b *backoff) next() time.Duration {
	d := b.max
	if b.attempt < 30 {
		if e := b.min << b.attempt; e < b.max {
			d = e
		}
	}
	b.attempt++
	half := d / 2
	if d-half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

func (b *backoff) reset() { b.attempt = 0 }

// sleep waits for d or until ctx ends, and reports whether ctx is still
// alive.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// redactURL drops the query, fragment and user info of a URL, which may
// hold a ticket or a session.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL]"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// redactURLError strips the query of the URL a *url.Error names.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}
