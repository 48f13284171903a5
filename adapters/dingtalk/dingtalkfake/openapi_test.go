package dingtalkfake_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/adapters/dingtalk/dingtalkfake"
)

// postJSON posts body as JSON, with token in the access token header when
// it is not empty, and returns the status and response body.
func postJSON(t *testing.T, url, token string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set(dingtalkfake.AccessTokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// A proxy's 502 and 504 (FailRandomly) are not the API's answers.
	proxy := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout
	if resp.StatusCode >= 400 && !proxy && resp.Header.Get("x-acs-request-id") == "" {
		t.Errorf("error response without x-acs-request-id header: %s", raw)
	}
	return resp.StatusCode, raw
}

// checkAPIError checks raw is an OpenAPI error body with code.
func checkAPIError(t *testing.T, raw []byte, code string) {
	t.Helper()
	var e map[string]string
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	if e["code"] != code || e["message"] == "" || e["requestid"] == "" || len(e) != 3 {
		t.Errorf("error body = %s, want {code:%q, requestid, message}", raw, code)
	}
}

func token(t *testing.T, api *dingtalkfake.OpenAPI) string {
	t.Helper()
	status, raw := postJSON(t, api.URL()+dingtalkfake.PathAccessToken, "", map[string]string{
		"appKey": dingtalkfake.DefaultClientID, "appSecret": dingtalkfake.DefaultClientSecret,
	})
	if status != http.StatusOK {
		t.Fatalf("accessToken: %d %s", status, raw)
	}
	var r struct {
		AccessToken string `json:"accessToken"`
		ExpireIn    int    `json:"expireIn"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.AccessToken == "" || r.ExpireIn != 7200 {
		t.Fatalf("accessToken answered %s (%v)", raw, err)
	}
	return r.AccessToken
}

func TestAccessToken(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	first := token(t, api)
	if again := token(t, api); again != first {
		t.Errorf("token asked for again while valid = %q, want the same %q", again, first)
	}
	if api.TokensIssued() != 1 || api.TokenRequests() != 2 {
		t.Errorf("TokensIssued() = %d, TokenRequests() = %d, want 1, 2", api.TokensIssued(), api.TokenRequests())
	}
	api.ExpireTokens()
	if fresh := token(t, api); fresh == first {
		t.Error("same token after expiry")
	}
	if api.TokensIssued() != 2 {
		t.Errorf("TokensIssued() = %d, want 2", api.TokensIssued())
	}

	tests := []struct {
		name     string
		body     map[string]string
		wantCode string
	}{
		{"wrong key", map[string]string{"appKey": "other", "appSecret": dingtalkfake.DefaultClientSecret}, dingtalkfake.CodeInvalidClientID},
		{"wrong secret", map[string]string{"appKey": dingtalkfake.DefaultClientID, "appSecret": "x"}, dingtalkfake.CodeInvalidClientSecret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postJSON(t, api.URL()+dingtalkfake.PathAccessToken, "", tc.body)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
			checkAPIError(t, raw, tc.wantCode)
		})
	}

	resp, err := http.Post(api.URL()+dingtalkfake.PathAccessToken, "application/x-www-form-urlencoded",
		strings.NewReader("appKey=a&appSecret=b"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("form body: status %d, want 400", resp.StatusCode)
	}
	checkAPIError(t, raw, dingtalkfake.CodeMissingBody)
}

func TestBatchSend(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	api.MarkInvalidUsers("gone01")
	api.MarkFlowControlled("busy01")
	tok := token(t, api)

	status, raw := postJSON(t, api.URL()+dingtalkfake.PathBatchSend, tok, map[string]any{
		"robotCode": api.RobotCode(),
		"userIds":   []string{"staff01", "gone01", "busy01"},
		"msgKey":    "sampleText",
		"msgParam":  `{"content":"your points: 120"}`,
	})
	if status != http.StatusOK {
		t.Fatalf("batchSend: %d %s", status, raw)
	}
	var resp map[string]any
	if err := json.Unmarshal(raw, &resp); err != nil {
		t.Fatal(err)
	}
	sent := api.Sent()
	if len(sent) != 1 {
		t.Fatalf("Sent() has %d messages, want 1", len(sent))
	}
	wantResp := map[string]any{
		"processQueryKey":           sent[0].ProcessQueryKey,
		"invalidStaffIdList":        []any{"gone01"},
		"flowControlledStaffIdList": []any{"busy01"},
	}
	if diff := cmp.Diff(wantResp, resp); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	wantSent := dingtalkfake.SentMessage{
		Path:                   dingtalkfake.PathBatchSend,
		RobotCode:              api.RobotCode(),
		UserIDs:                []string{"staff01", "gone01", "busy01"},
		MsgKey:                 "sampleText",
		MsgParam:               `{"content":"your points: 120"}`,
		ProcessQueryKey:        sent[0].ProcessQueryKey,
		InvalidStaffIDs:        []string{"gone01"},
		FlowControlledStaffIDs: []string{"busy01"},
	}
	if diff := cmp.Diff(wantSent, sent[0]); diff != "" {
		t.Errorf("recorded message (-want +got):\n%s", diff)
	}
	if sent[0].ProcessQueryKey == "" {
		t.Error("no processQueryKey")
	}
}

func TestSendErrors(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	tok := token(t, api)
	ok := func(mod func(map[string]any)) map[string]any {
		b := map[string]any{
			"robotCode": api.RobotCode(), "userIds": []string{"staff01"},
			"msgKey": "sampleText", "msgParam": `{"content":"hi"}`,
		}
		if mod != nil {
			mod(b)
		}
		return b
	}
	manyUsers := make([]string, 21)
	for i := range manyUsers {
		manyUsers[i] = "u"
	}

	tests := []struct {
		name       string
		token      string
		body       map[string]any
		wantStatus int
		wantCode   string
	}{
		{"no token", "", ok(nil), 400, dingtalkfake.CodeInvalidAuthentication},
		{"unknown token", "bogus", ok(nil), 400, dingtalkfake.CodeInvalidAuthentication},
		{"wrong robot", tok, ok(func(b map[string]any) { b["robotCode"] = "other" }), 400, dingtalkfake.CodeInvalidParameter},
		{"no msgKey", tok, ok(func(b map[string]any) { delete(b, "msgKey") }), 400, dingtalkfake.CodeMsgKeyEmpty},
		{"unknown msgKey", tok, ok(func(b map[string]any) { b["msgKey"] = "sampleNews" }), 400, dingtalkfake.CodeMsgKeyInvalid},
		{"msgParam not JSON", tok, ok(func(b map[string]any) { b["msgParam"] = "hi" }), 400, dingtalkfake.CodeMsgParamInvalid},
		{"msgParam an object, not a string", tok, ok(func(b map[string]any) { b["msgParam"] = map[string]string{"content": "hi"} }), 400, dingtalkfake.CodeInvalidParameter},
		{"text without content", tok, ok(func(b map[string]any) { b["msgParam"] = `{"content":""}` }), 400, "miss.param.textTocontent"},
		{"markdown without title", tok, ok(func(b map[string]any) { b["msgKey"], b["msgParam"] = "sampleMarkdown", `{"text":"## hi"}` }), 400, "miss.param.markdownTotitle"},
		{"link without messageUrl", tok, ok(func(b map[string]any) {
			b["msgKey"], b["msgParam"] = "sampleLink", `{"title":"t","text":"x","picUrl":"https://e.com/p.png"}`
		}), 400, "miss.param.linkTomessageUrl"},
		{"unknown parameter", tok, ok(func(b map[string]any) { b["msgParam"] = `{"content":"hi","picture":"x"}` }), 400, dingtalkfake.CodeMsgParamInvalid},
		{"action card without button", tok, ok(func(b map[string]any) {
			b["msgKey"], b["msgParam"] = "sampleActionCard", `{"title":"t","text":"x","singleTitle":"go"}`
		}), 400, "miss.param.actionCardTosingleURL"},
		{"image without photoURL", tok, ok(func(b map[string]any) { b["msgKey"], b["msgParam"] = "sampleImageMsg", `{}` }), 400, "miss.param.imageTophotoURL"},
		{"no users", tok, ok(func(b map[string]any) { b["userIds"] = []string{} }), 400, dingtalkfake.CodeInvalidParameter},
		{"21 users", tok, ok(func(b map[string]any) { b["userIds"] = manyUsers }), 400, dingtalkfake.CodeInvalidParameter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postJSON(t, api.URL()+dingtalkfake.PathBatchSend, tc.token, tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, raw)
			}
			checkAPIError(t, raw, tc.wantCode)
		})
	}
	if n := len(api.Sent()); n != 0 {
		t.Errorf("%d messages recorded, want none", n)
	}

	api.ExpireTokens()
	status, raw := postJSON(t, api.URL()+dingtalkfake.PathBatchSend, tok, ok(nil))
	if status != http.StatusBadRequest {
		t.Fatalf("expired token: status %d", status)
	}
	checkAPIError(t, raw, dingtalkfake.CodeInvalidAuthentication)
}

func TestFailNext(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	tok := token(t, api)
	api.FailNext(2, dingtalkfake.Failure{Status: http.StatusForbidden, Code: dingtalkfake.CodeQPSLimitForAPI})
	api.FailNext(1, dingtalkfake.Failure{Path: dingtalkfake.PathAccessToken, Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable"})
	body := map[string]any{
		"robotCode": api.RobotCode(), "openConversationId": "cidGroup01==",
		"msgKey": "sampleMarkdown", "msgParam": `{"title":"t","text":"**hi**"}`,
	}

	for i := range 2 {
		status, raw := postJSON(t, api.URL()+dingtalkfake.PathGroupSend, tok, body)
		if status != http.StatusForbidden {
			t.Fatalf("call %d: status %d, want 403", i, status)
		}
		checkAPIError(t, raw, dingtalkfake.CodeQPSLimitForAPI)
	}
	status, raw := postJSON(t, api.URL()+dingtalkfake.PathGroupSend, tok, body)
	if status != http.StatusOK {
		t.Fatalf("third call: %d %s", status, raw)
	}
	var resp map[string]string
	if err := json.Unmarshal(raw, &resp); err != nil || len(resp) != 1 || resp["processQueryKey"] == "" {
		t.Errorf("groupMessages/send answered %s", raw)
	}
	if n := api.Calls(dingtalkfake.PathGroupSend); n != 3 {
		t.Errorf("Calls() = %d, want 3", n)
	}
	sent := api.Sent()
	if len(sent) != 1 || sent[0].OpenConversationID != "cidGroup01==" || sent[0].Path != dingtalkfake.PathGroupSend {
		t.Errorf("Sent() = %+v", sent)
	}

	// The accessToken failure was left for the token endpoint.
	status, raw = postJSON(t, api.URL()+dingtalkfake.PathAccessToken, "", map[string]string{
		"appKey": dingtalkfake.DefaultClientID, "appSecret": dingtalkfake.DefaultClientSecret,
	})
	if status != http.StatusServiceUnavailable {
		t.Fatalf("accessToken: status %d, want 503", status)
	}
	checkAPIError(t, raw, "ServiceUnavailable")
}

func TestGroupSendNeedsConversation(t *testing.T) {
	api := dingtalkfake.NewOpenAPI(t)
	status, raw := postJSON(t, api.URL()+dingtalkfake.PathGroupSend, token(t, api), map[string]any{
		"robotCode": api.RobotCode(), "msgKey": "sampleText", "msgParam": `{"content":"hi"}`,
	})
	if status != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", status)
	}
	checkAPIError(t, raw, dingtalkfake.CodeInvalidParameter)
}

func TestSessionWebhook(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	var clock = func() time.Time { return now }
	api := dingtalkfake.NewOpenAPI(t, dingtalkfake.WithClock(func() time.Time { return clock() }))
	live, exp := api.NewSessionWebhook("cidMember01==", 0)
	if want := now.Add(90 * time.Minute); !exp.Equal(want) {
		t.Errorf("expiry %v, want %v", exp, want)
	}
	stale, _ := api.NewSessionWebhook("cidMember02==", time.Minute)
	clock = func() time.Time { return now.Add(2 * time.Minute) }

	text := map[string]any{"msgtype": "text", "text": map[string]string{"content": "hi"}}
	tests := []struct {
		name        string
		url         string
		body        any
		wantStatus  int
		wantErrcode int
	}{
		{"live", live, text, 200, dingtalkfake.WebhookErrcodeOK},
		{"expired", stale, text, 200, dingtalkfake.WebhookErrcodeNoSession},
		{"unknown", api.URL() + dingtalkfake.PathSessionWebhook + "?session=nope", text, 200, dingtalkfake.WebhookErrcodeNoSession},
		{"no msgtype", live, map[string]string{"text": "hi"}, 400, 0},
		{"image cannot be carried", live, map[string]any{"msgtype": "image", "image": map[string]string{"photoURL": "https://e.com/p.png"}},
			200, dingtalkfake.WebhookErrcodeBadMsgtype},
		{"link without text", live, map[string]any{"msgtype": "link", "link": map[string]string{"title": "t", "messageUrl": "https://e.com"}},
			200, dingtalkfake.WebhookErrcodeMissingParam},
		{"markdown without title", live, map[string]any{"msgtype": "markdown", "markdown": map[string]string{"text": "## hi"}},
			200, dingtalkfake.WebhookErrcodeMissingParam},
		{"actionCard misspelt", live, map[string]any{"msgtype": "actionCard", "actionCard": map[string]string{
			"title": "t", "text": "x", "singleTitle": "go", "singleUrl": "https://e.com"}}, 200, dingtalkfake.WebhookErrcodeMissingParam},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, raw := postJSON(t, tc.url, "", tc.body)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, raw)
			}
			if status != 200 {
				return
			}
			var r struct {
				Errcode int    `json:"errcode"`
				Errmsg  string `json:"errmsg"`
			}
			if err := json.Unmarshal(raw, &r); err != nil || r.Errcode != tc.wantErrcode || r.Errmsg == "" {
				t.Errorf("answer %s, want errcode %d", raw, tc.wantErrcode)
			}
		})
	}
	want := []dingtalkfake.WebhookReply{{
		ConversationID: "cidMember01==",
		Msgtype:        "text",
		Body:           json.RawMessage(`{"msgtype":"text","text":{"content":"hi"}}`),
		At:             now.Add(2 * time.Minute),
	}}
	if diff := cmp.Diff(want, api.Replies()); diff != "" {
		t.Errorf("replies (-want +got):\n%s", diff)
	}
	if n := api.Calls(dingtalkfake.PathSessionWebhook); n != len(tests) {
		t.Errorf("Calls() = %d, want %d", n, len(tests))
	}
}

// TestFailRandomly: a share of calls fails before doing anything, with
// the QPS limit, 502 or 504 in turn, the same way for the same seed; the
// failed calls record nothing, and rate 0 stops it.
func TestFailRandomly(t *testing.T) {
	run := func(seed int64) (outcomes []int, api *dingtalkfake.OpenAPI) {
		api = dingtalkfake.NewOpenAPI(t)
		hook, _ := api.NewSessionWebhook("cidMember01==", 0)
		api.FailRandomly(0.5, seed)
		text := map[string]any{"msgtype": "text", "text": map[string]string{"content": "hi"}}
		for range 40 {
			status, raw := postJSON(t, hook, "", text)
			switch status {
			case http.StatusOK:
			case http.StatusForbidden:
				checkAPIError(t, raw, dingtalkfake.CodeQPSLimitForAppkeyAndAPI)
			case http.StatusBadGateway, http.StatusGatewayTimeout:
			default:
				t.Fatalf("status %d: %s", status, raw)
			}
			outcomes = append(outcomes, status)
		}
		return outcomes, api
	}
	outcomes, api := run(7)
	failed := map[int]int{}
	for _, s := range outcomes {
		if s != http.StatusOK {
			failed[s]++
		}
	}
	n := failed[403] + failed[502] + failed[504]
	if n == 0 || n == len(outcomes) || failed[403] == 0 || failed[502] == 0 || failed[504] == 0 {
		t.Fatalf("outcomes %v: want some of each failure and some successes", outcomes)
	}
	if got := api.RandomFailures(); got != n {
		t.Errorf("RandomFailures() = %d, want %d", got, n)
	}
	if got, want := len(api.Replies()), len(outcomes)-n; got != want {
		t.Errorf("Replies() = %d, want %d (failed calls record nothing)", got, want)
	}
	if again, _ := run(7); !cmp.Equal(again, outcomes) {
		t.Errorf("same seed, other outcomes:\n%v\n%v", again, outcomes)
	}
	api.FailRandomly(0, 0)
	for range 10 {
		token(t, api)
	}
	if got := api.RandomFailures(); got != n {
		t.Errorf("failures after rate 0: %d, want %d", got, n)
	}
}
