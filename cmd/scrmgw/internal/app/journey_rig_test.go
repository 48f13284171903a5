package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	imagepng "image/png"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/scrmgw/scrmgw/adapters/dingtalk"
	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/queue"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// The journeys run the shipped workflows (configs/workflows, brand
// camellia) and templates (configs/templates) from the wire to the vendor
// fakes, on PostgreSQL and Redis, moving the workflow engine through days
// of virtual time.

const (
	journeySecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	journeyBrand  = "camellia"
)

// shanghai is the zone of the journeys' store (and the workflows' default).
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// virtualClock is the engine's clock in a journey: the wall clock shifted
// by an offset, so time passes as usual and Advance jumps ahead.
type virtualClock struct {
	mu     sync.Mutex
	offset time.Duration
}

// newVirtualClock returns a clock that reads start now.
func newVirtualClock(start time.Time) *virtualClock {
	return &virtualClock{offset: time.Until(start)}
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock d ahead.
func (c *virtualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// journey is a gateway on PostgreSQL and Redis with its workflow engine on
// a virtual clock, the brand camellia, store sh-1 (Asia/Shanghai) and its
// guide 李娜 (g-li: WeCom userid li, DingTalk staff-li), and the channels
// asked for on fakes.
type journey struct {
	t     *testing.T
	s     *started
	clock *virtualClock
	tok   string

	wecom   *wecomfake.Server     // nil without WeCom
	shop    *shopCDN              // the brand's pictures, wherever the templates link them
	gw      *dingtalkfake.Gateway // nil without DingTalk
	openapi *dingtalkfake.OpenAPI // nil without DingTalk
}

type journeyChannels struct{ wecom, dingtalk bool }

// shopCDN serves the brand's pictures: a PNG at every path but those
// marked missing (404). Every request for any host reaches it.
type shopCDN struct {
	srv     *httptest.Server
	mu      sync.Mutex
	hits    map[string]int
	missing map[string]bool
}

func newShopCDN(t *testing.T) *shopCDN {
	t.Helper()
	var png bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	if err := imagepng.Encode(&png, img); err != nil {
		t.Fatal(err)
	}
	c := &shopCDN{hits: map[string]int{}, missing: map[string]bool{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.hits[r.Host+r.URL.Path]++
		missing := c.missing[r.URL.Path]
		c.mu.Unlock()
		if missing {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(png.Bytes())
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// client sends every request to the CDN, keeping the URL's host in Host.
func (c *shopCDN) client() *http.Client {
	target := c.srv.Listener.Addr().String()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, target)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: schemeDowngrade{base}}
}

// schemeDowngrade sends https requests as http (the CDN is plain HTTP).
type schemeDowngrade struct{ rt http.RoundTripper }

func (s schemeDowngrade) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme = "http"
	return s.rt.RoundTrip(r)
}

// miss makes path answer 404.
func (c *shopCDN) miss(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.missing[path] = true
}

// fetches is how often host+path was asked for.
func (c *shopCDN) fetches(hostPath string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[hostPath]
}

// startJourney starts the gateway with the engine's clock reading start.
func startJourney(t *testing.T, ch journeyChannels, start time.Time) *journey {
	t.Helper()
	j := &journey{t: t, clock: newVirtualClock(start), tok: "journey-e2e-admin-token-0123"}
	cfg := configs.Default()
	cfg.DataDir = t.TempDir()
	cfg.Database.URL = storetest.URL(t, "postgres")
	cfg.Redis.URL = storetest.RedisURL(t)
	cfg.AdminToken = j.tok
	cfg.Security.PhoneKey = strings.Repeat("5e", 32)
	cfg.Webhook.Secret = journeySecret
	if ch.wecom {
		j.wecom = wecomfake.New(t)
		cfg.WeCom = j.wecom.Config()
		cfg.WeCom.Brand = journeyBrand
		cfg.WeCom.MaxClockSkew = 10 * time.Minute
	}
	if ch.dingtalk {
		j.openapi = dingtalkfake.NewOpenAPI(t)
		j.gw = dingtalkfake.New(t, dingtalkfake.WithOpenAPI(j.openapi))
		cfg.DingTalk = dingtalk.Config{ClientID: j.gw.ClientID(), ClientSecret: j.gw.ClientSecret(), Brand: journeyBrand,
			StreamHost: j.gw.URL(), APIBase: j.openapi.URL()}
	}
	// The shipped templates link pictures on the brand's shop
	// (https://shop.example.com/static/...); WeCom's channel fetches and
	// uploads those it sends as media. They come from a local server.
	j.shop = newShopCDN(t)
	mediaHTTPForTests = j.shop.client()
	j.s = startServeClock(t, cfg, j.clock.Now)
	mediaHTTPForTests = nil
	// A WeCom message task is sent by the guide later: the gateway looks
	// every CheckEvery whether it reached the member (30 minutes in
	// production; the journeys confirm tasks at once).
	j.s.app.sender.CheckEvery(300 * time.Millisecond)
	guide := `{"id":"g-li","store_id":"sh-1","name":"李娜"`
	if ch.wecom {
		guide += `,"wecom_userid":"li"`
	}
	if ch.dingtalk {
		guide += `,"dingtalk_userid":"staff-li"`
	}
	guide += "}"
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"camellia","name":"山茶花"}`},
		{"/api/v1/stores", `{"id":"sh-1","name":"静安店","brands":["camellia"],"lat":31.23,"lng":121.47,
		  "time_zone":"Asia/Shanghai","address":"上海市静安区南京西路1601号","opening_hours":"10:00-22:00"}`},
		{"/api/v1/guides", guide},
		{"/api/v1/products/bulk", `{"items":[{"brand":"camellia","sku":"CL-100","name":"氨基酸洁面乳","price":129,"replenish_days":30},
		  {"brand":"camellia","sku":"TN-200","name":"保湿爽肤水","price":189,"replenish_days":60},
		  {"brand":"camellia","sku":"BG-1","name":"帆布包","price":59}]}`},
	} {
		if code, body := request(t, "POST", j.s.base+req.path, j.tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	if ch.wecom {
		j.wecom.AddEmployees("li")
	}
	if ch.dingtalk {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := j.gw.WaitConnected(ctx); err != nil {
			t.Fatalf("DingTalk stream never connected: %v", err)
		}
	}
	return j
}

// startServeClock is startServe with the workflow engine on clock (and
// the gateway's debug log on stderr with JOURNEY_LOG set).
func startServeClock(t *testing.T, cfg configs.Config, clock func() time.Time) *started {
	t.Helper()
	var out io.Writer = io.Discard
	if os.Getenv("JOURNEY_LOG") != "" {
		out = os.Stderr
	}
	return startServeWith(t, cfg, slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug})), clock)
}

// enableShipped puts the shipped workflow name (configs/workflows) through
// the API as it is, and enables it.
func (j *journey) enableShipped(name string) {
	t := j.t
	t.Helper()
	raw, err := fs.ReadFile(configs.ExampleWorkflows(), name+".yaml")
	if err != nil {
		t.Fatalf("shipped workflow %s: %v", name, err)
	}
	req, _ := http.NewRequest("PUT", j.s.base+"/api/v1/workflows/"+name+"?brand="+journeyBrand, strings.NewReader(string(raw)))
	req.Header.Set("Authorization", "Bearer "+j.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT %s: %d %s", name, resp.StatusCode, b)
	}
	if code, body := request(t, "POST", j.s.base+"/api/v1/workflows/"+name+"/enable?brand="+journeyBrand, j.tok, ""); code != 200 {
		t.Fatalf("enable %s: %d %s", name, code, body)
	}
}

// event posts one signed CloudEvent to /callbacks/events.
func (j *journey) event(id, body string) {
	j.t.Helper()
	if code, resp := postSigned(j.t, j.s.base, journeySecret, "msg-"+id, "application/cloudevents+json", body); code != 200 {
		j.t.Fatalf("event %s: %d %s", id, code, resp)
	}
}

// advance moves virtual time d ahead and sweeps, as the periodic sweep
// task does, until cond holds: wakes due by then are handed to the queue
// and act. The engine hands Asynq a wake due within its horizon (1h)
// with a ProcessAt in virtual time, which Asynq reads as wall time: such
// a wake is handed over again by the sweep only once it is SweepGrace
// (2m) overdue. The journeys' waits (days, quiet hours) are longer than
// the horizon and wait in the database, which the sweep hands over as
// soon as they are due.
func (j *journey) advance(d time.Duration, what string, cond func() bool) {
	j.t.Helper()
	j.clock.Advance(d)
	j.sweepUntil(what, cond)
}

// sweepUntil runs the engine's sweep until cond holds.
func (j *journey) sweepUntil(what string, cond func() bool) {
	j.t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := j.s.app.engine.Sweep(ctx); err != nil {
			j.t.Logf("sweep: %v", err)
		}
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			j.dump()
			j.t.Fatalf("timed out (virtual time %s) waiting for %s", j.clock.Now().In(shanghai).Format(time.DateTime), what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settle lets duplicate or late work surface before counting.
func (j *journey) settle() {
	ctx := context.Background()
	for range 5 {
		j.s.app.engine.Sweep(ctx)
		time.Sleep(200 * time.Millisecond)
	}
}

// runs returns the member's runs of a workflow.
func (j *journey) runs(workflow string, memberID int64) []store.WorkflowRun {
	rs, err := j.s.app.Store.Runs(context.Background(), store.RunFilter{Brand: journeyBrand, Workflow: workflow, MemberID: memberID})
	if err != nil {
		j.t.Fatalf("runs of %s: %v", workflow, err)
	}
	return rs
}

// waitRun waits for the member's single run of workflow to wait at step
// (its wake in the future), and returns it.
func (j *journey) waitRun(workflow string, memberID int64, step string) store.WorkflowRun {
	j.t.Helper()
	var last []store.WorkflowRun
	j.sweepUntil(fmt.Sprintf("the %s run at step %s", workflow, step), func() bool {
		last = j.runs(workflow, memberID)
		return len(last) == 1 && last[0].Step == step && last[0].WakeAt != nil && last[0].State == store.RunActive &&
			last[0].WakeAt.After(j.clock.Now())
	})
	return last[0]
}

// runIs is a condition, for advance and sweepUntil, on the member's
// single run of workflow: that there is one and ok holds of it.
func (j *journey) runIs(workflow string, memberID int64, ok func(store.WorkflowRun) bool) func() bool {
	return func() bool {
		rs := j.runs(workflow, memberID)
		return len(rs) == 1 && ok(rs[0])
	}
}

// runEnded: the run is over (done, converted, failed, ...).
func runEnded(r store.WorkflowRun) bool { return r.State != store.RunActive }

// runIn: the run is in state.
func runIn(state string) func(store.WorkflowRun) bool {
	return func(r store.WorkflowRun) bool { return r.State == state }
}

// runAt: the run is at step.
func runAt(step string) func(store.WorkflowRun) bool {
	return func(r store.WorkflowRun) bool { return r.Step == step }
}

// runAtOrEnded: the run is at step, or over.
func runAtOrEnded(step string) func(store.WorkflowRun) bool {
	return func(r store.WorkflowRun) bool { return r.Step == step || runEnded(r) }
}

// wantRun checks that the member's single run of workflow ended in
// state, for reason when one is given.
func (j *journey) wantRun(workflow string, memberID int64, state, reason string) {
	j.t.Helper()
	rs := j.runs(workflow, memberID)
	if len(rs) != 1 || rs[0].State != state || (reason != "" && rs[0].EndReason != reason) {
		var got []string
		for _, r := range rs {
			got = append(got, r.State+" ("+r.EndReason+")")
		}
		want := state
		if reason != "" {
			want += " (" + reason + ")"
		}
		j.t.Errorf("runs of %s ended %q, want one, %s", workflow, got, want)
	}
}

// steps returns the steps a run went through.
func (j *journey) steps(runID int64) []store.RunStep {
	j.t.Helper()
	steps, err := j.s.app.Store.RunSteps(context.Background(), runID)
	if err != nil {
		j.t.Fatalf("steps of run %d: %v", runID, err)
	}
	return steps
}

// welcomed joins a member through WeCom (wecomJoin), waits for their
// welcome and returns them.
func (j *journey) welcomed(externalID, name, phone string) *store.MemberView {
	j.t.Helper()
	n := len(j.wecom.Welcomes())
	j.wecomJoin(externalID, name, phone)
	waitFor(j.t, "the welcome of "+name, func() bool { return len(j.wecom.Welcomes()) > n })
	return j.memberByPhone(strings.ReplaceAll(phone, " ", ""))
}

// stats reads GET /api/v1/workflows/{name}/stats.
func (j *journey) stats(name string) (engine.Stats, string) {
	j.t.Helper()
	code, body := request(j.t, "GET", j.s.base+"/api/v1/workflows/"+name+"/stats?brand="+journeyBrand, j.tok, "")
	if code != 200 {
		j.t.Fatalf("stats of %s: %d %s", name, code, body)
	}
	var st engine.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		j.t.Fatalf("stats of %s: %v in %s", name, err, body)
	}
	return st, body
}

// step returns a step's counts in st.
func step(t *testing.T, st engine.Stats, id string) engine.StepCounts {
	t.Helper()
	for _, s := range st.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("stats of %s have no step %s: %+v", st.Workflow, id, st.Steps)
	return engine.StepCounts{}
}

// memberID returns the id of the member with phone.
func (j *journey) memberByPhone(phone string) *store.MemberView {
	j.t.Helper()
	v, err := j.s.app.Store.MemberByPhone(context.Background(), phone, journeyBrand)
	if err != nil {
		j.t.Fatalf("member %s: %v", phone[len(phone)-4:], err)
	}
	return v
}

// coupon returns the member's single coupon of batch.
func (j *journey) coupon(memberID int64, batch string) store.IssuedCoupon {
	j.t.Helper()
	cs, err := j.s.app.Store.MemberCoupons(context.Background(), memberID, journeyBrand)
	if err != nil {
		j.t.Fatal(err)
	}
	var out []store.IssuedCoupon
	for _, c := range cs {
		if c.Batch == batch {
			out = append(out, c)
		}
	}
	if len(out) != 1 {
		j.t.Fatalf("member %d has %d coupons of %s, want 1: %+v", memberID, len(out), batch, cs)
	}
	return out[0]
}

// cnDate is a date as the zh templates write it ("1月2日").
func cnDate(t time.Time) string { return t.In(shanghai).Format("1月2日") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// jsonEq compares two JSON documents by value.
func jsonEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Errorf("%s: %v in %s", what, err, got)
		return
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %v", what, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("%s =\n  %s\nwant\n  %s", what, gb, wb)
	}
}

// dump logs the brand's runs and their steps, to tell where a journey
// stopped.
func (j *journey) dump() {
	ctx := context.Background()
	rs, err := j.s.app.Store.Runs(ctx, store.RunFilter{Brand: journeyBrand})
	if err != nil {
		j.t.Logf("runs: %v", err)
		return
	}
	for _, r := range rs {
		j.t.Logf("run %d %s member %d: %s at %s (wake %v, seq %d) %s", r.ID, r.Workflow, r.MemberID, r.State, r.Step, r.WakeAt, r.WakeSeq, r.EndReason)
		steps, _ := j.s.app.Store.RunSteps(ctx, r.ID)
		for _, st := range steps {
			b, _ := json.Marshal(st)
			j.t.Logf("  %s", b)
		}
	}
	ins := asynq.NewInspector(j.s.app.Redis)
	defer ins.Close()
	for _, q := range []string{queue.Workflows, queue.Critical, queue.Default} {
		for what, list := range map[string]func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			"scheduled": ins.ListScheduledTasks, "retry": ins.ListRetryTasks, "archived": ins.ListArchivedTasks, "pending": ins.ListPendingTasks} {
			tasks, _ := list(q)
			for _, ti := range tasks {
				j.t.Logf("asynq %s %s: %s %s next %s err %q", q, what, ti.ID, ti.Payload, ti.NextProcessAt.Format(time.RFC3339), ti.LastErr)
			}
		}
	}
}

// sends checks the stats' send counts, over the workflow and per send
// step (in sent), against what the vendor fakes got.
func checkSends(t *testing.T, st engine.Stats, body string, sent map[string]int64, delivered int64) {
	t.Helper()
	var total int64
	for id, n := range sent {
		total += n
		sc := step(t, st, id)
		if sc.Sends == nil || sc.Sends.Sent != n || sc.Sends.Failed != 0 || sc.Sends.Skipped != 0 || sc.Sends.Queued != 0 || sc.Done != n {
			t.Errorf("step %s: %+v sends %+v, want %d sent (done), none queued, failed or skipped", id, sc, sc.Sends, n)
		}
	}
	s := st.Sends
	if st.Sent != total || s.Sent != total || s.Delivered != delivered || s.Failed != 0 || s.Skipped != 0 || s.Queued != 0 ||
		s.NotConfirmed+s.Undelivered+s.Delivered > total {
		t.Errorf("stats = %s\nwant %d sent (what the fakes got), %d delivered, none queued, failed or skipped", body, total, delivered)
	}
}

// confirmAll plays the guide sending every message task in WeCom.
func (j *journey) confirmAll() {
	j.t.Helper()
	for _, mt := range j.wecom.MsgTemplates() {
		if !j.wecom.ConfirmMsgTemplate(mt.MsgID) {
			j.t.Fatalf("no message task %s", mt.MsgID)
		}
	}
}

// guideTask returns the single task of the guide g-li titled title.
func (j *journey) guideTask(title string) store.GuideTask {
	j.t.Helper()
	tasks, err := j.s.app.Store.GuideTasks(context.Background(), store.GuideTaskFilter{GuideID: "g-li"})
	if err != nil {
		j.t.Fatal(err)
	}
	var out []store.GuideTask
	for _, tk := range tasks {
		if tk.Title == title {
			out = append(out, tk)
		}
	}
	if len(out) != 1 {
		var titles []string
		for _, tk := range tasks {
			titles = append(titles, tk.Title)
		}
		j.t.Fatalf("%d tasks of g-li titled %q, want 1; the tasks: %q", len(out), title, titles)
	}
	return out[0]
}

// taskText is a guide task as the guide gets it in a message.
func taskText(tk store.GuideTask) string {
	s := "【任务】" + tk.Title
	if tk.Note != "" {
		s += "\n" + tk.Note
	}
	return s + "\n截止：" + tk.DueAt.In(shanghai).Format("01-02 15:04")
}
