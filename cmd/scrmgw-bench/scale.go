package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/configs"
	"github.com/scrmgw/scrmgw/gateway/api"
	"github.com/scrmgw/scrmgw/gateway/console"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/seed"
	"github.com/scrmgw/scrmgw/templates"
	"github.com/scrmgw/scrmgw/workflows"
	"github.com/scrmgw/scrmgw/workflows/engine"
)

// scaleConfig is the scale subcommand's flags.
type scaleConfig struct {
	PG, Redis, Schema string
	Size              seed.Size
	SizeName          string
	Seed              bool
	SeedOnly          bool
	Requests          int
	PageRequests      int
	Trigger           bool
	SeedCommerce      bool
	Console           bool
	Explain           bool
	// Pages, when set, times only the console pages it matches (and
	// nothing of the API).
	Pages *regexp.Regexp
}

func parseScale(args []string, stderr io.Writer) (scaleConfig, error) {
	c := scaleConfig{}
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.PG, "pg", "", "PostgreSQL URL (required); the data lives in --schema")
	fs.StringVar(&c.Redis, "redis", "", "Redis URL for the workflow engine's queue (required with --trigger)")
	fs.StringVar(&c.Schema, "schema", "scrmgw_scale", "schema of the seeded data")
	fs.StringVar(&c.SizeName, "size", "small", "small, console (1M members, 200k stores, 1M runs) or full (10M members, 5M waiting runs)")
	fs.BoolVar(&c.Seed, "seed", false, "drop the schema, migrate and seed it (else measure what is there)")
	fs.BoolVar(&c.SeedOnly, "seed-only", false, "with --seed: stop after seeding")
	members := fs.Int("members", 0, "override the size's members")
	runs := fs.Int("runs", 0, "override the size's waiting runs")
	bulk := fs.Int("bulk", -1, "override the size's bulk members (the schedule trigger's audience)")
	fs.IntVar(&c.Requests, "requests", 20000, "member-by-phone requests per variant")
	fs.IntVar(&c.PageRequests, "page-requests", 200, "requests per list, funnel and console page")
	fs.BoolVar(&c.Trigger, "trigger", false, "enter the bulk brand's members through a schedule trigger (once per seed: the runs stay)")
	fs.BoolVar(&c.Explain, "explain", true, "print the plans of the segment queries")
	fs.BoolVar(&c.SeedCommerce, "seed-commerce", false, "add yesterday's settlements (Asia/Shanghai) of every store of every brand, with their commission lines, for the commerce page (once)")
	fs.BoolVar(&c.Console, "console", true, "time the console's pages")
	pages := fs.String("pages", "", "a regular expression: time only the console pages whose names match it, and none of the API")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "scrmgw-bench scale: unexpected argument %q\n", fs.Arg(0))
		return c, flag.ErrHelp
	}
	switch c.SizeName {
	case "small":
		c.Size = seed.Small()
	case "console":
		c.Size = seed.Console()
	case "full":
		c.Size = seed.Full()
	default:
		fmt.Fprintf(stderr, "scrmgw-bench scale: --size: want small, console or full, got %q\n", c.SizeName)
		return c, flag.ErrHelp
	}
	if *members > 0 {
		// Fewer members: at most one run of each kind per member.
		c.Size.Members = *members
		c.Size.Runs, c.Size.EndedRuns = min(c.Size.Runs, *members), min(c.Size.EndedRuns, *members)
		c.Size.BulkMembers = min(c.Size.BulkMembers, *members)
	}
	if *runs > 0 {
		c.Size.Runs = *runs
	}
	if *bulk >= 0 {
		c.Size.BulkMembers = *bulk
	}
	if err := c.Size.Validate(); err != nil {
		fmt.Fprintf(stderr, "scrmgw-bench scale: %v\n", err)
		return c, flag.ErrHelp
	}
	if c.PG == "" || (c.Trigger && c.Redis == "") || c.Requests < 1 || c.PageRequests < 1 {
		fmt.Fprintln(stderr, "scrmgw-bench scale: --pg is required (and --redis with --trigger); request counts must be positive")
		return c, flag.ErrHelp
	}
	if *pages != "" {
		re, err := regexp.Compile(*pages)
		if err != nil {
			fmt.Fprintf(stderr, "scrmgw-bench scale: --pages: %v\n", err)
			return c, flag.ErrHelp
		}
		c.Pages = re
	}
	if !regexp.MustCompile(`^[a-z_][a-z0-9_]*$`).MatchString(c.Schema) {
		fmt.Fprintf(stderr, "scrmgw-bench scale: --schema: want a lower-case identifier, got %q\n", c.Schema)
		return c, flag.ErrHelp
	}
	return c, nil
}

// benchPhoneKey is the phone key of the seeded data.
var benchPhoneKey = []byte("scrmgw-bench-phone-key-32-bytes!")

const benchAdmin = "scrmgw-bench-admin-token-0123456789"

// noSender refuses sends: the measured workflows only wait.
type noSender struct{}

func (noSender) Send(context.Context, string, *adapters.Outbound, engine.SendMeta) error {
	return fmt.Errorf("scrmgw-bench: no sends")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// scaleRun is one run of the scale subcommand.
type scaleRun struct {
	c      scaleConfig
	out    io.Writer
	log    io.Writer
	st     *store.Store
	conn   *pgx.Conn
	srv    *httptest.Server
	http   *http.Client
	cookie *http.Client
	rng    *rand.Rand
	rows   []resultRow
}

type resultRow struct {
	what, variant string
	n             int
	p50, p95, p99 time.Duration
	note          string
}

func runScale(ctx context.Context, c scaleConfig, stdout, stderr io.Writer) error {
	r := &scaleRun{c: c, out: stdout, log: stderr, rng: rand.New(rand.NewPCG(7, 23)), http: &http.Client{}}
	u, err := url.Parse(c.PG)
	if err != nil {
		return fmt.Errorf("--pg: %w", err)
	}
	fmt.Fprintf(stdout, "load average at start: %s\n", loadavg())
	if c.Seed {
		admin, err := pgx.Connect(ctx, c.PG)
		if err != nil {
			return fmt.Errorf("connecting to PostgreSQL: %w", err)
		}
		_, err = admin.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s", c.Schema, c.Schema))
		admin.Close(ctx)
		if err != nil {
			return fmt.Errorf("recreating schema %s: %w", c.Schema, err)
		}
	}
	q := u.Query()
	q.Set("search_path", c.Schema)
	u.RawQuery = q.Encode()
	dsn := u.String()
	r.st, err = store.Open(ctx, store.Options{URL: dsn, PhoneKey: benchPhoneKey, MaxOpenConns: 20})
	if err != nil {
		return err
	}
	defer r.st.Close()
	if _, err := r.st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if c.Seed {
		fmt.Fprintf(stdout, "\nseeding %+v\n", c.Size)
		rep, err := seed.Seed(ctx, seed.Options{URL: dsn, Phones: r.st.Phones(), Log: func(stage string, rows int64, took time.Duration) {
			fmt.Fprintf(stderr, "seeded %-18s %11d rows in %v\n", stage, rows, took.Round(time.Millisecond))
		}}, c.Size)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "| stage | rows | time |\n|---|---:|---:|\n")
		for _, s := range rep.Stages {
			fmt.Fprintf(stdout, "| %s | %d | %v |\n", s.Name, s.Rows, s.Took.Round(time.Millisecond))
		}
		fmt.Fprintf(stdout, "| total | | %v |\n", rep.Took.Round(time.Second))
		if c.SeedOnly {
			fmt.Fprintf(stdout, "\nload average at end: %s\n", loadavg())
			return nil
		}
	}
	if r.conn, err = pgx.Connect(ctx, dsn); err != nil {
		return err
	}
	defer r.conn.Close(context.Background())
	var members, runs, stores int64
	if err := r.conn.QueryRow(ctx, `SELECT (SELECT max(id) FROM members), (SELECT count(*) FROM workflow_runs WHERE state = 'active'),
		(SELECT count(*) FROM stores)`).Scan(&members, &runs, &stores); err != nil {
		return fmt.Errorf("reading the seeded sizes (seed first with --seed): %w", err)
	}
	fmt.Fprintf(stdout, "\ndata: %d members, %d stores, %d active runs\n", members, stores, runs)
	if c.SeedCommerce {
		if err := r.seedCommerce(ctx); err != nil {
			return err
		}
	}

	// The gateway's API and console, on loopback.
	reg, err := templates.LoadFS(configs.BuiltinTemplates())
	if err != nil {
		return err
	}
	var queue engine.Enqueuer = discardQueue{}
	if c.Redis != "" {
		opt, err := asynq.ParseRedisURI(c.Redis)
		if err != nil {
			return fmt.Errorf("--redis: %w", err)
		}
		client := asynq.NewClient(opt)
		defer client.Close()
		queue = client
	}
	eng, err := engine.New(engine.Options{Store: r.st, Queue: queue, Templates: reg, Sender: noSender{}, SweepBatch: 2000})
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	apiSrv := api.New(api.Options{Store: r.st, AdminToken: benchAdmin, Workflows: eng, MaxBodyBytes: 1 << 20, MaxBulkBodyBytes: 1 << 20})
	con := console.New(console.Options{Store: r.st, Auth: apiSrv, Workflows: eng, LoadOptions: workflows.Options{Templates: reg},
		DryRun: engine.DryRunOptions{Templates: reg, Locale: "zh"}})
	e := gin.New()
	apiSrv.Mount(e)
	con.Mount(e)
	e.GET("/bare", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	r.srv = httptest.NewServer(e)
	defer r.srv.Close()

	brands := int(min(int64(c.Size.Brands), 50))
	for b := 1; b <= brands; b++ {
		if _, err := r.st.Workflow(ctx, seed.BrandID(b), seed.Workflow); err == nil {
			continue
		}
		if _, err := eng.Put(ctx, seed.BrandID(b), seed.Workflow, []byte(recallYAML(seed.BrandID(b)))); err != nil {
			return fmt.Errorf("putting %s/%s: %w", seed.BrandID(b), seed.Workflow, err)
		}
	}
	if err := r.signIn(); err != nil {
		return err
	}
	if c.Pages == nil {
		if err := r.memberByPhone(ctx, int(members)); err != nil {
			return err
		}
		if err := r.lists(ctx, brands, int(stores)); err != nil {
			return err
		}
	}
	if c.Console {
		if err := r.consolePages(brands, int(members)); err != nil {
			return err
		}
	}
	r.table()
	if c.Trigger {
		if err := r.trigger(ctx, eng); err != nil {
			return err
		}
	}
	if c.Explain {
		if err := r.plans(ctx); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nload average at end: %s\n", loadavg())
	return nil
}

type discardQueue struct{}

func (discardQueue) EnqueueContext(context.Context, *asynq.Task, ...asynq.Option) (*asynq.TaskInfo, error) {
	return &asynq.TaskInfo{}, nil
}

func recallYAML(brand string) string {
	return fmt.Sprintf(`name: %s
trigger:
  schedule: every day at 10:00
  time_zone: UTC
entry:
  brand: %s
goal: none
steps:
  - id: wait
    wait: 7d
  - id: send
    tag: recalled
`, seed.Workflow, brand)
}

// timeIt runs f n times and records the latencies.
func (r *scaleRun) timeIt(what, variant string, n int, f func(i int) error) error {
	d := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if err := f(i); err != nil {
			return fmt.Errorf("%s, %s: %w", what, variant, err)
		}
		d = append(d, time.Since(t))
	}
	slices.Sort(d)
	pct := func(p float64) time.Duration { return d[min(len(d)-1, int(float64(len(d))*p))] }
	r.rows = append(r.rows, resultRow{what: what, variant: variant, n: n, p50: pct(0.50), p95: pct(0.95), p99: pct(0.99)})
	fmt.Fprintf(r.log, "%s, %s: p50 %v p95 %v p99 %v\n", what, variant, pct(0.5), pct(0.95), pct(0.99))
	return nil
}

// get fetches path from the test server and checks the status.
func (r *scaleRun) get(cl *http.Client, path, token string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodGet, r.srv.URL+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body[:min(len(body), 300)])
	}
	return body, nil
}

func (r *scaleRun) memberByPhone(ctx context.Context, members int) error {
	n := r.c.Requests
	pick := func() int { return 1 + r.rng.IntN(members) }
	if err := r.timeIt("member by phone", "bare HTTP handler (floor of a request)", n, func(int) error {
		_, err := r.get(r.http, "/bare", "")
		return err
	}); err != nil {
		return err
	}
	if err := r.timeIt("member by phone", "SQL: SELECT by phone_hash (pgx)", n, func(int) error {
		var id int64
		return r.conn.QueryRow(ctx, `SELECT id FROM members WHERE phone_hash = $1`, r.st.Phones().Hash(seed.Phone(pick()))).Scan(&id)
	}); err != nil {
		return err
	}
	if err := r.timeIt("member by phone", "store.MemberByPhone, in process", n, func(int) error {
		_, err := r.st.MemberByPhone(ctx, seed.Phone(pick()), "")
		return err
	}); err != nil {
		return err
	}
	return r.timeIt("member by phone", "API GET /api/v1/members?phone=", n, func(int) error {
		_, err := r.get(r.http, "/api/v1/members?phone="+url.QueryEscape(seed.Phone(pick())), benchAdmin)
		return err
	})
}

func (r *scaleRun) lists(ctx context.Context, brands, stores int) error {
	n := r.c.PageRequests
	cursors, err := r.walk()
	if err != nil {
		return err
	}
	store := func() string { return seed.StoreID(1 + r.rng.IntN(stores)) }
	brand := func() string { return seed.BrandID(1 + r.rng.IntN(brands)) }
	steps := []struct {
		what, variant string
		f             func(int) error
	}{
		{"a store's guides", "SQL: guides WHERE store_id ORDER BY id (pgx)", func(int) error {
			rows, err := r.conn.Query(ctx, `SELECT id, name, capacity, bound_count FROM guides WHERE store_id = $1 ORDER BY id LIMIT 100`, store())
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			return err
		}},
		{"a store's guides", "API GET /api/v1/guides?store_id=", func(int) error {
			_, err := r.get(r.http, "/api/v1/guides?store_id="+store(), benchAdmin)
			return err
		}},
		{"a workflow's funnel", "SQL: runs GROUP BY state (pgx)", func(int) error {
			rows, err := r.conn.Query(ctx, `SELECT state, count(*) FROM workflow_runs WHERE brand_id = $1 AND workflow = $2 GROUP BY state`, brand(), seed.Workflow)
			if err == nil {
				rows.Close()
				err = rows.Err()
			}
			return err
		}},
		{"a workflow's funnel", "API GET /api/v1/workflows/recall/stats", func(int) error {
			_, err := r.get(r.http, "/api/v1/workflows/"+seed.Workflow+"/stats?brand="+brand(), benchAdmin)
			return err
		}},
		{"members of a brand, page 1", "API GET /api/v1/members?brand=&limit=100", func(int) error {
			_, err := r.get(r.http, "/api/v1/members?limit=100&brand="+brand(), benchAdmin)
			return err
		}},
		{"members of a brand, deep page", "API GET /api/v1/members?cursor= (a cursor from the walk)", func(int) error {
			_, err := r.get(r.http, "/api/v1/members?limit=100&cursor="+url.QueryEscape(cursors[r.rng.IntN(len(cursors))]), benchAdmin)
			return err
		}},
		{"a workflow's runs, page 1", "API GET /api/v1/workflows/recall/runs", func(int) error {
			_, err := r.get(r.http, "/api/v1/workflows/"+seed.Workflow+"/runs?limit=100&brand="+brand(), benchAdmin)
			return err
		}},
		{"a guide's tasks", "API GET /api/v1/guides/{id}/tasks", func(int) error {
			_, err := r.get(r.http, "/api/v1/guides/g"+store()[1:]+"-1/tasks?limit=100", benchAdmin)
			return err
		}},
	}
	for _, s := range steps {
		if err := r.timeIt(s.what, s.variant, n, s.f); err != nil {
			return err
		}
	}
	return nil
}

// walk pages through all of brand-01's members through the API, 1,000 at
// a time, and returns the cursors it was given.
func (r *scaleRun) walk() ([]string, error) {
	var cursors []string
	t := time.Now()
	rows, cursor := 0, ""
	for {
		path := "/api/v1/members?limit=1000&brand=" + seed.BrandID(1)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		body, err := r.get(r.http, path, benchAdmin)
		if err != nil {
			return nil, err
		}
		var page struct {
			Items []json.RawMessage `json:"items"`
			Next  string            `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		rows += len(page.Items)
		if page.Next == "" {
			break
		}
		cursor = page.Next
		cursors = append(cursors, cursor)
	}
	took := time.Since(t)
	fmt.Fprintf(r.out, "\nwalked all %d members of %s through the API, 1,000 a page: %d pages in %v (%.1f ms a page)\n",
		rows, seed.BrandID(1), len(cursors)+1, took.Round(time.Millisecond), float64(took.Microseconds())/1000/float64(len(cursors)+1))
	if len(cursors) == 0 {
		return nil, fmt.Errorf("%s has fewer than 1,000 members: nothing to page", seed.BrandID(1))
	}
	return cursors, nil
}

func (r *scaleRun) signIn() error {
	jar, _ := cookiejar.New(nil)
	r.cookie = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	body, err := r.get(r.cookie, "/console/sign-in", "")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(body)
	if m == nil {
		return fmt.Errorf("no form token on the console's sign-in page")
	}
	resp, err := r.cookie.PostForm(r.srv.URL+"/console/sign-in", url.Values{"token": {benchAdmin}, "csrf_token": {string(m[1])}, "next": {"/console/workflows"}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return fmt.Errorf("console sign-in: status %d", resp.StatusCode)
	}
	return nil
}

func (r *scaleRun) consolePages(brands, members int) error {
	n := r.c.PageRequests
	brand := func() string { return seed.BrandID(1 + r.rng.IntN(brands)) }
	// Member i joins brand 1 + i mod brands first.
	member := func() int { return 1 + r.rng.IntN(members) }
	memberBrand := func(i int) string { return seed.BrandID(1 + i%brands) }
	// Store i carries brand 1 + i mod brands.
	storeOf := func() (string, string) {
		b := 1 + r.rng.IntN(brands)
		return seed.BrandID(b), seed.StoreID(b - 1 + brands*(1+r.rng.IntN(max(1, r.c.Size.Stores/brands-1))))
	}
	pages := []struct{ name, path func() string }{
		{func() string { return "baseline: bare handler, same session client" }, func() string { return "/bare" }},
		{func() string { return "workflows" }, func() string { return "/console/workflows?brand=" + brand() }},
		{func() string { return "editor" }, func() string { return "/console/workflows/" + brand() + "/" + seed.Workflow }},
		{func() string { return "funnel" }, func() string { return "/console/funnel?workflow=" + url.QueryEscape(brand()+"/"+seed.Workflow) }},
		{func() string { return "funnel, last 7 days" }, func() string {
			return "/console/funnel?workflow=" + url.QueryEscape(brand()+"/"+seed.Workflow) + "&from=" + time.Now().AddDate(0, 0, -6).Format(time.DateOnly)
		}},
		{func() string { return "funnel, one store" }, func() string {
			b, s := storeOf()
			return "/console/funnel?workflow=" + url.QueryEscape(b+"/"+seed.Workflow) + "&store=" + s
		}},
		{func() string { return "guides" }, func() string { return "/console/guides?brand=" + brand() }},
		{func() string { return "guides, by points, page 3" }, func() string { return "/console/guides?sort=points&page=3&brand=" + brand() }},
		{func() string { return "guides, one store" }, func() string {
			b, s := storeOf()
			return "/console/guides?brand=" + b + "&store=" + s
		}},
		{func() string { return "stores" }, func() string { return "/console/stores?brand=" + brand() }},
		{func() string { return "members, by phone" }, func() string {
			i := member()
			return "/console/members?by=phone&brand=" + memberBrand(i) + "&q=" + url.QueryEscape(seed.Phone(i))
		}},
		{func() string { return "members, by name" }, func() string {
			// "Member 1234": the member and those whose number starts so.
			i := member()
			return "/console/members?by=name&brand=" + memberBrand(i) + "&q=" + url.QueryEscape(fmt.Sprintf("Member %d", i/10))
		}},
		{func() string { return "members, one store" }, func() string {
			b, s := storeOf()
			return "/console/members?brand=" + b + "&store=" + s
		}},
		{func() string { return "member page" }, func() string { return fmt.Sprintf("/console/members/%d", member()) }},
		{func() string { return "commerce (settlements of yesterday)" }, func() string { return "/console/commerce?brand=" + brand() }},
		{func() string { return "live sessions" }, func() string { return "/console/live?brand=" + brand() }},
		{func() string { return "operations" }, func() string { return "/console/operations" }},
	}
	for _, p := range pages {
		if r.c.Pages != nil && !r.c.Pages.MatchString(p.name()) {
			continue
		}
		if err := r.timeIt("console page", p.name(), n, func(int) error {
			_, err := r.get(r.cookie, p.path(), "")
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *scaleRun) table() {
	fmt.Fprintf(r.out, "\n| what | variant | n | p50 | p95 | p99 |\n|---|---|---:|---:|---:|---:|\n")
	for _, row := range r.rows {
		fmt.Fprintf(r.out, "| %s | %s | %d | %s | %s | %s |\n", row.what, row.variant, row.n, ms(row.p50), ms(row.p95), ms(row.p99))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

// trigger enters the bulk brand's members through a schedule trigger, and
// as a baseline the same rows by one INSERT … SELECT.
func (r *scaleRun) trigger(ctx context.Context, eng *engine.Engine) error {
	var n int64
	if err := r.conn.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE brand_id = $1`, seed.BulkBrand).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("the bulk brand has no members: seed with bulk members")
	}
	name := "bulk-enter"
	y := fmt.Sprintf("name: %s\ntrigger:\n  schedule: every day at 10:00\n  time_zone: UTC\nentry:\n  brand: %s\ngoal: none\nsteps:\n  - id: wait\n    wait: 3d\n  - id: mark\n    tag: benched\n",
		name, seed.BulkBrand)
	if _, err := eng.Put(ctx, seed.BulkBrand, name, []byte(y)); err != nil {
		return err
	}
	if err := eng.Enable(ctx, seed.BulkBrand, name); err != nil {
		return err
	}
	// Other brands' scheduled workflows are not enabled: the firing
	// enters the bulk brand's members only.
	now := time.Now().UTC()
	fire := time.Date(now.Year(), now.Month(), now.Day(), 10, 0, 0, 0, time.UTC)
	if fire.After(now) {
		fire = fire.AddDate(0, 0, -1)
	}
	fmt.Fprintf(r.out, "\nschedule trigger: %d members of %s, load average before: %s\n", n, seed.BulkBrand, loadavg())
	t, c0 := time.Now(), sampleCPU()
	entered, err := eng.RunSchedules(ctx, fire.Add(time.Second))
	took, c1 := time.Since(t), sampleCPU()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "| variant | runs | time | runs/s |\n|---|---:|---:|---:|\n")
	fmt.Fprintf(r.out, "| engine.RunSchedules (segment pages of 2,000, runs + first steps) | %d | %v | %.0f |\n", entered, took.Round(time.Millisecond), float64(entered)/took.Seconds())
	t, c2 := time.Now(), sampleCPU()
	tag, err := r.conn.Exec(ctx, `INSERT INTO workflow_runs (member_id, brand_id, workflow, version, via_brand_id, trigger_key, state, step, visit,
			wake_at, wake_seq, wait_event, sent, started_at, end_reason)
		SELECT member_id, brand_id, 'bulk-baseline', 'v1', '', 'sbase', 'active', 'wait', 1, now() + interval '3 days', 1, '', 0, now(), ''
		FROM memberships WHERE brand_id = $1`, seed.BulkBrand)
	base, c3 := time.Since(t), sampleCPU()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "| baseline: one INSERT … SELECT of the runs alone (no steps) | %d | %v | %.0f |\n", tag.RowsAffected(), base.Round(time.Millisecond), float64(tag.RowsAffected())/base.Seconds())
	fmt.Fprintf(r.out, "\nengine: %s\nbaseline: %s\n", cpuNote(c0, c1, took), cpuNote(c2, c3, base))
	return nil
}

// plans prints the plans of the segment queries and of the lists.
func (r *scaleRun) plans(ctx context.Context) error {
	var mid int64
	if err := r.conn.QueryRow(ctx, `SELECT max(member_id) / 2 FROM memberships WHERE brand_id = $1`, seed.BrandID(1)).Scan(&mid); err != nil {
		return err
	}
	year := time.Now().AddDate(-1, 0, 0)
	month := time.Now().AddDate(0, -1, 0)
	for _, q := range []struct {
		name string
		q    store.SegmentQuery
	}{
		{"a brand's members, first page", store.SegmentQuery{Brand: seed.BrandID(1), Limit: 2000}},
		{"a brand's members, a page in the middle", store.SegmentQuery{Brand: seed.BrandID(1), AfterID: mid, Limit: 2000}},
		{"gold members", store.SegmentQuery{Brand: seed.BrandID(1), Levels: []string{"gold"}, Limit: 2000}},
		{"joined in the last year", store.SegmentQuery{Brand: seed.BrandID(1), JoinedFrom: &year, Limit: 2000}},
		{"last purchase in the last month", store.SegmentQuery{Brand: seed.BrandID(1), LastPurchaseFrom: &month, Limit: 2000}},
		{"not tagged vip", store.SegmentQuery{Brand: seed.BrandID(1), WithoutTags: []string{"vip"}, Limit: 2000}},
	} {
		plan, err := r.st.SegmentPlan(ctx, q.q)
		if err != nil {
			return err
		}
		fmt.Fprintf(r.out, "\n#### Segment: %s\n\n```\n%s\n```\n", q.name, plan)
	}
	return nil
}

// cpuSample is the CPU time, in clock ticks (1/100 s on Linux), of this
// process, of every PostgreSQL process, and of the whole machine (busy and
// total), read from /proc: what a figure taken on a shared machine got of
// the CPU.
type cpuSample struct {
	self, postgres, busy, total int64
}

func sampleCPU() cpuSample {
	var s cpuSample
	s.self = procTicks(fmt.Sprintf("/proc/%d/stat", os.Getpid()))
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if e.Name()[0] < '0' || e.Name()[0] > '9' {
				continue
			}
			if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
				s.postgres += procTicks("/proc/" + e.Name() + "/stat")
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, v := range f[1:] {
			var n int64
			fmt.Sscan(v, &n)
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
	}
	return s
}

// procTicks is a process's user + system time in clock ticks.
func procTicks(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	// The fields after the command (which may hold spaces) in parens.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var u, s int64
	fmt.Sscan(f[11], &u)
	fmt.Sscan(f[12], &s)
	return u + s
}

// cpuNote says what a span got of the CPU: this process's and
// PostgreSQL's CPU seconds, and how busy the machine was (others too).
func cpuNote(a, b cpuSample, wall time.Duration) string {
	tick := func(n int64) float64 { return float64(n) / 100 }
	busy := 0.0
	if b.total > a.total {
		busy = 100 * float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	return fmt.Sprintf("wall %.1f s; CPU: scrmgw %.1f s, PostgreSQL %.1f s (%.0f%% of one core together); machine %.0f%% busy (all processes), load average %s",
		wall.Seconds(), tick(b.self-a.self), tick(b.postgres-a.postgres), 100*(tick(b.self-a.self)+tick(b.postgres-a.postgres))/wall.Seconds(), busy, loadavg())
}

// seedCommerce adds yesterday's settlements (in Asia/Shanghai, the
// console's ledger zone by default) of every store of every brand, each
// with a guide's, the store's and a distributor's commission line, one in
// ten unreconciled: what the commerce page reads.
func (r *scaleRun) seedCommerce(ctx context.Context) error {
	zone, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return err
	}
	day := time.Now().In(zone).AddDate(0, 0, -1).Format(time.DateOnly)
	t := time.Now()
	tag, err := r.conn.Exec(ctx, `INSERT INTO settlements (date, store_id, brand_id, orders, refunds, sales_cents, refunds_cents, net_cents,
			guide_cents, store_cents, distributor_cents, lines, reconciled, status, created_at)
		SELECT $1::text, store_id, brand_id, 3, 0, 30000, 0, 30000, 1500, 600, 300, 3, n % 10 <> 0,
			CASE WHEN n % 10 = 0 THEN 'unreconciled' ELSE 'settled' END, now()
		FROM (SELECT store_id, brand_id, row_number() OVER (ORDER BY store_id, brand_id) AS n FROM store_brands) AS sb
		ON CONFLICT DO NOTHING`, day)
	if err != nil {
		return fmt.Errorf("seeding settlements: %w", err)
	}
	lines, err := r.conn.Exec(ctx, `INSERT INTO commission_lines (brand_id, order_id, item_line, refund_id, party, party_id, store_id,
			base_cents, amount_cents, rule, settle_date, created_at)
		SELECT sb.brand_id, 900000000 + sb.n, 1, 0, p.party, CASE p.party WHEN 'guide' THEN 'g' || substr(sb.store_id, 2) || '-1'
				WHEN 'store' THEN sb.store_id ELSE 'dist-1' END, sb.store_id, 30000, p.cents, 'seed', $1::text, now()
		FROM (SELECT store_id, brand_id, row_number() OVER (ORDER BY store_id, brand_id) AS n FROM store_brands) AS sb,
			(VALUES ('guide', 1500), ('store', 600), ('distributor', 300)) AS p(party, cents)
		ON CONFLICT DO NOTHING`, day)
	if err != nil {
		return fmt.Errorf("seeding commission lines: %w", err)
	}
	if _, err := r.conn.Exec(ctx, `ANALYZE settlements; ANALYZE commission_lines`); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "seeded %d settlements and %d commission lines of %s in %v\n", tag.RowsAffected(), lines.RowsAffected(), day, time.Since(t).Round(time.Millisecond))
	return nil
}
