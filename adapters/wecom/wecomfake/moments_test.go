package wecomfake_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// TestMomentCustomerList: get_moment_customer_list pages through the
// customers who can see an employee's post by cursor, with WeCom's
// shape ({"userid","external_userid"} each, next_cursor empty on the
// last page); an employee who did not post has none; a bad cursor is
// 50100, a limit out of 1-1000 or an unknown moment 40058, a missing
// userid 41009.
func TestMomentCustomerList(t *testing.T) {
	f := wecomfake.New(t)
	f.AddEmployees("li", "wang")
	for _, id := range []string{"wmA", "wmB", "wmC"} {
		f.AddContact(wecomfake.Contact{ExternalUserID: id, FollowUsers: []wecom.FollowUser{{UserID: "li"}}})
	}
	tok := url.QueryEscape(token(t, f, f.ContactSecret()))
	call := func(path, body string) map[string]any {
		t.Helper()
		resp, err := http.Post(f.URL()+path+"?access_token="+tok, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	job := call(wecomfake.PathAddMomentTask, `{"text":{"content":"春季新品"},"visible_range":{"sender_list":{"user_list":["li","wang"]}}}`)["jobid"].(string)
	result := func() map[string]any {
		resp, err := http.Get(f.URL() + wecomfake.PathGetMomentTaskResult + "?access_token=" + tok + "&jobid=" + job)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	if st := result()["status"]; st != float64(2) {
		t.Fatalf("first read: status %v, want 2 (running)", st)
	}
	moment := result()["result"].(map[string]any)["moment_id"].(string)
	if !f.PostMoment(moment, "li") {
		t.Fatal("li cannot post")
	}

	var got []string
	cursor := ""
	for page := 0; ; page++ {
		a := call(wecomfake.PathGetMomentCustomerList, fmt.Sprintf(`{"moment_id":%q,"userid":"li","cursor":%q,"limit":2}`, moment, cursor))
		if a["errcode"] != float64(0) {
			t.Fatalf("page %d: %v", page, a)
		}
		for _, c := range a["customer_list"].([]any) {
			c := c.(map[string]any)
			got = append(got, c["userid"].(string)+":"+c["external_userid"].(string))
		}
		cursor = a["next_cursor"].(string)
		if cursor == "" {
			break
		}
		if page > 2 {
			t.Fatal("no last page")
		}
	}
	if want := []string{"li:wmA", "li:wmB", "li:wmC"}; !slices.Equal(got, want) {
		t.Errorf("customers = %v, want %v", got, want)
	}
	if a := call(wecomfake.PathGetMomentCustomerList, fmt.Sprintf(`{"moment_id":%q,"userid":"wang","limit":100}`, moment)); a["errcode"] != float64(0) || len(a["customer_list"].([]any)) != 0 {
		t.Errorf("wang, who did not post: %v", a)
	}
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"bad cursor", fmt.Sprintf(`{"moment_id":%q,"userid":"li","cursor":"nope","limit":10}`, moment), wecomfake.CodeInvalidCursor},
		{"limit 0", fmt.Sprintf(`{"moment_id":%q,"userid":"li","limit":0}`, moment), wecomfake.CodeInvalidParameter},
		{"limit 1001", fmt.Sprintf(`{"moment_id":%q,"userid":"li","limit":1001}`, moment), wecomfake.CodeInvalidParameter},
		{"unknown moment", `{"moment_id":"momX","userid":"li","limit":10}`, wecomfake.CodeInvalidParameter},
		{"no userid", fmt.Sprintf(`{"moment_id":%q,"limit":10}`, moment), wecomfake.CodeMissingUserID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if a := call(wecomfake.PathGetMomentCustomerList, tc.body); a["errcode"] != float64(tc.code) {
				t.Errorf("errcode = %v (%v), want %d", a["errcode"], a["errmsg"], tc.code)
			}
		})
	}
}
