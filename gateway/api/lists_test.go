package api_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// pages reads a list through the API to its end with ?cursor=, and
// returns the ids of the items in order.
func (c client) pages(path, token string, limit int) []string {
	c.t.Helper()
	var ids []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 500 {
			c.t.Fatalf("%s: paging does not end", path)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		out := c.must(200, "GET", p, token, "")
		items, _ := out["items"].([]any)
		for _, it := range items {
			id := it.(map[string]any)["id"]
			ids = append(ids, fmt.Sprint(id))
		}
		next, _ := out["next"].(string)
		if next == "" {
			if len(items) == limit {
				c.t.Fatalf("%s: a full page without next", p)
			}
			return ids
		}
		if len(items) != limit {
			c.t.Fatalf("%s: %d items with next, want %d", p, len(items), limit)
		}
		cursor = next
	}
}

func onceEach(t *testing.T, what string, got []string, want []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("%s: %s listed twice", what, id)
		}
		seen[id] = true
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s: listed %v, want %v", what, got, want)
	}
}

func TestListsPageWithCursors(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		c := newServer(t, s)
		for _, b := range []string{"acme", "zeta"} {
			c.must(201, "POST", "/api/v1/brands", adminToken, fmt.Sprintf(`{"id":%q,"name":%q}`, b, b))
		}
		acmeTok := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"acme","brand":"acme"}`)["token"].(string)
		zetaTok := c.must(201, "POST", "/api/v1/tokens", adminToken, `{"name":"zeta","brand":"zeta"}`)["token"].(string)
		c.must(201, "POST", "/api/v1/stores", adminToken, `{"id":"a","name":"A","lat":31,"lng":121,"time_zone":"Asia/Shanghai","active":true,"brands":["acme"]}`)
		var guides []string
		for i := range 7 {
			id := fmt.Sprintf("g%d", i)
			c.must(201, "POST", "/api/v1/guides", adminToken, fmt.Sprintf(`{"id":%q,"store_id":"a","name":"G","capacity":10,"active":true}`, id))
			guides = append(guides, id)
		}
		var acme, runs, tasks []string
		var members []int64
		for i := range 11 {
			m := c.must(201, "POST", "/api/v1/members", adminToken, fmt.Sprintf(`{"phone":"+86139%08d","name":"A%d","brand":"acme"}`, i, i))
			id := int64(m["id"].(float64))
			acme = append(acme, fmt.Sprint(id))
			members = append(members, id)
		}
		c.must(201, "POST", "/api/v1/members", adminToken, `{"phone":"+8613700000001","brand":"zeta"}`)
		var rs []*store.WorkflowRun
		for _, id := range members {
			rs = append(rs, &store.WorkflowRun{MemberID: id, BrandID: "acme", Workflow: "recall", Version: "v1", TriggerKey: "s1",
				Step: "wait", StartedAt: time.Now()})
		}
		started, err := s.StartRuns(ctx, rs)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(started) - 1; i >= 0; i-- {
			runs = append(runs, fmt.Sprint(started[i].ID))
		}
		runOf := map[int64]string{}
		for _, r := range started {
			runOf[r.MemberID] = fmt.Sprint(r.ID)
		}
		// Half the tasks are due a minute later: earliest due first, then
		// by id.
		due := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		var later []string
		for i, id := range members {
			tk := &store.GuideTask{MemberID: id, GuideID: "g1", BrandID: "acme", Title: "call", DueAt: due.Add(time.Duration(i%2) * time.Minute)}
			if _, err := s.CreateGuideTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				tasks = append(tasks, fmt.Sprint(tk.ID))
			} else {
				later = append(later, fmt.Sprint(tk.ID))
			}
		}
		tasks = append(tasks, later...)

		for _, limit := range []int{1, 3, 11} {
			onceEach(t, "acme's members (admin)", c.pages("/api/v1/members?brand=acme", adminToken, limit), acme)
			onceEach(t, "acme's members (acme)", c.pages("/api/v1/members", acmeTok, limit), acme)
			onceEach(t, "store a's guides", c.pages("/api/v1/guides?store_id=a", acmeTok, limit), guides)
			onceEach(t, "recall's runs", c.pages("/api/v1/workflows/recall/runs?brand=acme", adminToken, limit), runs)
			onceEach(t, "a member's runs", c.pages("/api/v1/members/"+acme[3]+"/runs", acmeTok, limit), []string{runOf[members[3]]})
			onceEach(t, "g1's tasks", c.pages("/api/v1/guides/g1/tasks", acmeTok, limit), tasks)
		}
		if got := c.pages("/api/v1/members", adminToken, 4); len(got) != 12 {
			t.Errorf("the admin's list of every member has %d, want 12", len(got))
		}
		if got := c.pages("/api/v1/members", zetaTok, 5); len(got) != 1 {
			t.Errorf("zeta sees members %v, want its one", got)
		}
		c.must(404, "GET", "/api/v1/members?brand=acme", zetaTok, "")
		c.must(404, "GET", "/api/v1/guides/g1/tasks", zetaTok, "")
		if got := c.must(200, "GET", "/api/v1/members?brand=acme&limit=1", acmeTok, "")["items"].([]any)[0].(map[string]any); got["phone_tail"] != "0000" || got["name"] != "A0" {
			t.Errorf("first member row %v, want name A0 and the phone's last four digits only", got)
		}
	})
}

func TestListsRefuseBadCursors(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		c := newServer(t, s)
		c.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"acme","name":"Acme"}`)
		c.must(201, "POST", "/api/v1/brands", adminToken, `{"id":"beta","name":"Beta"}`)
		for i := range 3 {
			c.must(201, "POST", "/api/v1/members", adminToken, fmt.Sprintf(`{"phone":"+86139%08d","brand":"acme"}`, i))
		}
		members := c.must(200, "GET", "/api/v1/members?brand=acme&limit=1", adminToken, "")["next"].(string)
		brands := c.must(200, "GET", "/api/v1/brands?limit=1", adminToken, "")
		if brands["next"] == nil || brands["next_after"] != "acme" {
			t.Fatalf("brands page: %v, want next and next_after acme", brands)
		}
		if got := c.must(200, "GET", "/api/v1/brands?limit=1&cursor="+url.QueryEscape(brands["next"].(string)), adminToken, "")["items"].([]any); len(got) != 1 || got[0].(map[string]any)["id"] != "beta" {
			t.Errorf("brands after the cursor: %v, want beta", got)
		}
		for _, tc := range []struct{ name, path, want string }{
			{"made up", "/api/v1/members?cursor=abc", "cursor"},
			{"an id", "/api/v1/members?cursor=2", "cursor"},
			{"another list's", "/api/v1/workflows/recall/runs?brand=acme&cursor=" + url.QueryEscape(members), "cursor"},
			{"members' to brands", "/api/v1/brands?cursor=" + url.QueryEscape(members), "cursor"},
			{"damaged", "/api/v1/members?cursor=" + url.QueryEscape(members[:len(members)-2]+"AA"), "cursor"},
			{"with after", "/api/v1/guides?after=g1&cursor=" + url.QueryEscape(brands["next"].(string)), "cursor or after"},
			{"too long", "/api/v1/members?cursor=" + strings.Repeat("A", 600), "cursor"},
			{"limit", "/api/v1/members?limit=1001", "limit"},
			{"state", "/api/v1/workflows/recall/runs?brand=acme&state=sleeping", "state"},
		} {
			got, out := c.do("GET", tc.path, adminToken, "")
			e, _ := out["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if got != 400 || errCode(out) != "invalid_argument" || !strings.Contains(msg, tc.want) {
				t.Errorf("%s: %d %v, want 400 invalid_argument about %q", tc.name, got, out, tc.want)
			}
		}
	})
}
