package wecomfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

type answer struct {
	Errcode     int    `json:"errcode"`
	Errmsg      string `json:"errmsg"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

func get(t *testing.T, u string) answer {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

func post(t *testing.T, u, body string) answer {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return readAnswer(t, resp)
}

func readAnswer(t *testing.T, resp *http.Response) answer {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, b)
	}
	var a answer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return a
}

func token(t *testing.T, f *wecomfake.Server, secret string) string {
	t.Helper()
	a := get(t, f.URL()+wecomfake.PathGetToken+"?corpid="+url.QueryEscape(f.CorpID())+"&corpsecret="+url.QueryEscape(secret))
	if a.Errcode != 0 || a.AccessToken == "" {
		t.Fatalf("gettoken: %+v", a)
	}
	return a.AccessToken
}

func TestGetToken(t *testing.T) {
	now := time.Unix(1700000000, 0)
	f := wecomfake.New(t, wecomfake.WithClock(func() time.Time { return now }))
	for name, tc := range map[string]struct {
		query string
		code  int
	}{
		"wrong corp":   {"corpid=wwother&corpsecret=" + f.Secret(), wecomfake.CodeInvalidCorpID},
		"no secret":    {"corpid=" + f.CorpID(), wecomfake.CodeSecretMissing},
		"wrong secret": {"corpid=" + f.CorpID() + "&corpsecret=nope", wecomfake.CodeInvalidCredential},
	} {
		a := get(t, f.URL()+wecomfake.PathGetToken+"?"+tc.query)
		if a.Errcode != tc.code || !strings.Contains(a.Errmsg, "hint: [") {
			t.Errorf("%s: %+v, want %d", name, a, tc.code)
		}
	}
	first := get(t, f.URL()+wecomfake.PathGetToken+"?corpid="+f.CorpID()+"&corpsecret="+f.Secret())
	if first.ExpiresIn != 7200 {
		t.Errorf("expires_in = %d", first.ExpiresIn)
	}
	now = now.Add(time.Hour)
	again := get(t, f.URL()+wecomfake.PathGetToken+"?corpid="+f.CorpID()+"&corpsecret="+f.Secret())
	if again.AccessToken != first.AccessToken || again.ExpiresIn != 3600 {
		t.Errorf("within validity: %+v, want the same token with 3600s left", again)
	}
	if got := token(t, f, f.ContactSecret()); got == first.AccessToken {
		t.Error("the contact secret got the app's token")
	}
	if f.TokenRequests() != 6 || f.TokensIssued() != 2 {
		t.Errorf("requests %d, issued %d", f.TokenRequests(), f.TokensIssued())
	}
	now = now.Add(time.Hour)
	if a := post(t, f.URL()+wecomfake.PathKFSyncMsg+"?access_token="+first.AccessToken, `{}`); a.Errcode != wecomfake.CodeTokenExpired {
		t.Errorf("after 7200s: %+v", a)
	}
}

func TestTokenChecks(t *testing.T) {
	f := wecomfake.New(t)
	app := token(t, f, f.Secret())
	contact := token(t, f, f.ContactSecret())
	for name, tc := range map[string]struct {
		path, token string
		code        int
	}{
		"missing":        {wecomfake.PathKFSyncMsg, "", wecomfake.CodeTokenMissing},
		"unknown":        {wecomfake.PathKFSyncMsg, "nope", wecomfake.CodeInvalidToken},
		"contact on kf":  {wecomfake.PathKFSyncMsg, contact, wecomfake.CodeAPIForbidden},
		"app on welcome": {wecomfake.PathSendWelcomeMsg, app, wecomfake.CodeAPIForbidden},
		"app on kf":      {wecomfake.PathKFSyncMsg, app, 0},
	} {
		if a := post(t, f.URL()+tc.path+"?access_token="+tc.token, `{}`); a.Errcode != tc.code {
			t.Errorf("%s: %+v, want %d", name, a, tc.code)
		}
	}
	f.ExpireTokens()
	if a := post(t, f.URL()+wecomfake.PathKFSyncMsg+"?access_token="+app, `{}`); a.Errcode != wecomfake.CodeTokenExpired {
		t.Errorf("expired: %+v", a)
	}
	if token(t, f, f.Secret()) == app {
		t.Error("gettoken after ExpireTokens returned the expired token")
	}
}

func TestStrictBodies(t *testing.T) {
	f := wecomfake.New(t)
	tok := token(t, f, f.ContactSecret())
	for name, body := range map[string]string{
		"not json":      `welcome_code=x`,
		"unknown field": `{"welcome_code":"x","text":{"content":"hi"},"extra":1}`,
		"wrong type":    `{"welcome_code":1}`,
		"empty":         ``,
	} {
		if a := post(t, f.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+tok, body); a.Errcode != wecomfake.CodeInvalidParameter ||
			!strings.Contains(a.Errmsg, "wrong json format") {
			t.Errorf("%s: %+v", name, a)
		}
	}
	// An encoder that sends every attachment object is caught.
	code := f.IssueWelcomeCode("wmA")
	body := `{"welcome_code":"` + code + `","attachments":[{"msgtype":"image","image":{"media_id":"M"},"link":{"title":"","url":""}}]}`
	if a := post(t, f.URL()+wecomfake.PathSendWelcomeMsg+"?access_token="+tok, body); a.Errcode != wecomfake.CodeInvalidParameter {
		t.Errorf("extra attachment object: %+v", a)
	}
}

func TestFailures(t *testing.T) {
	f := wecomfake.New(t)
	f.FailNext(wecomfake.PathGetToken, 1, wecomfake.CodeSystemBusy, "")
	if a := get(t, f.URL()+wecomfake.PathGetToken+"?corpid="+f.CorpID()+"&corpsecret="+f.Secret()); a.Errcode != -1 ||
		!strings.HasPrefix(a.Errmsg, "system busy, hint:") {
		t.Errorf("injected: %+v", a)
	}
	tok := token(t, f, f.Secret())
	f.FailNext("", 2, wecomfake.CodeFreqLimit, "api freq out of limit")
	for range 2 {
		if a := post(t, f.URL()+wecomfake.PathKFSyncMsg+"?access_token="+tok, `{}`); a.Errcode != wecomfake.CodeFreqLimit {
			t.Errorf("injected on any path: %+v", a)
		}
	}
	if a := post(t, f.URL()+wecomfake.PathKFSyncMsg+"?access_token="+tok, `{}`); a.Errcode != 0 {
		t.Errorf("after the injected failures: %+v", a)
	}
	f.FailHTTPNext(wecomfake.PathKFSyncMsg, 1, http.StatusBadGateway)
	resp, err := http.Post(f.URL()+wecomfake.PathKFSyncMsg+"?access_token="+tok, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("HTTP status = %d", resp.StatusCode)
	}
	calls := f.Calls()
	if n := len(calls); n != 6 || calls[5].Errcode != -2 || calls[4].Errcode != 0 {
		t.Errorf("calls = %+v", calls)
	}
}

// FailRandomly fails about the given share of calls, in all four ways,
// before they do anything.
func TestFailRandomly(t *testing.T) {
	f := wecomfake.New(t)
	f.FailRandomly(0.2, 7)
	kinds := map[string]int{}
	const calls = 500
	for range calls {
		resp, err := http.Get(f.URL() + wecomfake.PathGetToken + "?corpid=" + f.CorpID() + "&corpsecret=" + f.Secret())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			kinds[http.StatusText(resp.StatusCode)]++
		case strings.Contains(string(b), `"errcode":0`):
			kinds["ok"]++
		default:
			var a answer
			json.Unmarshal(b, &a)
			kinds[strconv.Itoa(a.Errcode)]++
		}
	}
	failed := calls - kinds["ok"]
	if failed != f.RandomFailures() || failed < 60 || failed > 140 {
		t.Errorf("%d of %d calls failed (fake counts %d), want about 20%%: %v", failed, calls, f.RandomFailures(), kinds)
	}
	for _, k := range []string{"45009", "-1", "Bad Gateway", "Gateway Timeout"} {
		if kinds[k] == 0 {
			t.Errorf("no %s among the failures: %v", k, kinds)
		}
	}
	f.FailRandomly(0, 0)
	if a := get(t, f.URL()+wecomfake.PathGetToken+"?corpid="+f.CorpID()+"&corpsecret="+f.Secret()); a.Errcode != 0 {
		t.Errorf("after FailRandomly(0): %+v", a)
	}
}
