package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// Every generated request is a valid callback for the wecomfake
// defaults: the bare handler (the gateway's verify, decrypt and parse)
// accepts it, and its dedup key is the one written to keys.txt.
func TestGenerateServesThroughBare(t *testing.T) {
	for _, kind := range []string{"text", "contact", "mix"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			meta, err := generate(context.Background(), genConfig{N: 50, Kind: kind, Out: dir}, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if meta.N != 50 || meta.Texts+meta.Contacts != 50 {
				t.Fatalf("meta = %+v", meta)
			}
			switch kind {
			case "text":
				if meta.Contacts != 0 {
					t.Errorf("%d contacts in a text set", meta.Contacts)
				}
			case "contact":
				if meta.Texts != 0 {
					t.Errorf("%d texts in a contact set", meta.Texts)
				}
			case "mix":
				if meta.Texts == 0 || meta.Contacts == 0 {
					t.Errorf("mix = %d texts, %d contacts", meta.Texts, meta.Contacts)
				}
			}
			keys, err := readKeys(dir)
			if err != nil || len(keys) != 50 {
				t.Fatalf("keys: %d, %v", len(keys), err)
			}
			cr, err := wecom.NewCrypto(wecomfake.DefaultToken, wecomfake.DefaultEncodingAESKey, wecomfake.DefaultCorpID)
			if err != nil {
				t.Fatal(err)
			}
			h, err := bareHandler(meta.Token, meta.EncodingAESKey, meta.CorpID, nil)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(filepath.Join(dir, requestsFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			i := 0
			for sc.Scan() {
				target, body, ok := strings.Cut(sc.Text(), "\t")
				if !ok {
					t.Fatalf("line %d has no tab", i)
				}
				req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
				req.Header.Set("Content-Type", "text/xml")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || rec.Body.String() != "success" {
					t.Fatalf("request %d: %d %q", i, rec.Code, rec.Body.String())
				}
				q := req.URL.Query()
				plain, err := cr.Decrypt(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), []byte(body))
				if err != nil {
					t.Fatal(err)
				}
				msg, err := wecom.ParseMessage(plain)
				if err != nil {
					t.Fatal(err)
				}
				if msg.DedupKey() != keys[i] {
					t.Errorf("request %d: dedup key %q, keys.txt says %q", i, msg.DedupKey(), keys[i])
				}
				if ts := q.Get("timestamp"); ts == "" || time.Since(time.Unix(msg.CreateTime, 0)) > time.Minute {
					t.Errorf("request %d: timestamp %q, CreateTime %d: not current", i, ts, msg.CreateTime)
				}
				i++
			}
			if i != 50 {
				t.Errorf("%d requests, want 50", i)
			}
			lua, err := os.ReadFile(filepath.Join(dir, luaFile))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{filepath.Join(dir, requestsFile), `wrk.format("POST"`, `"text/xml"`, "function request()", "SCRMGW-LOAD sent="} {
				if !strings.Contains(string(lua), want) {
					t.Errorf("script lacks %q", want)
				}
			}
		})
	}
}

// A tampered callback is refused by the bare server, as by the gateway.
func TestBareRefusesBadSignature(t *testing.T) {
	h, err := bareHandler(wecomfake.DefaultToken, wecomfake.DefaultEncodingAESKey, wecomfake.DefaultCorpID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, err := wecomfake.Callback{}.Request("http://x"+wecom.CallbackPath,
		wecomfake.EmployeeText(wecomfake.DefaultAgentID, "guide1", "hi").XML())
	if err != nil {
		t.Fatal(err)
	}
	q := req.URL.Query()
	q.Set("msg_signature", strings.Repeat("0", 40))
	req.URL.RawQuery = q.Encode()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("tampered callback: %d, want 403", rec.Code)
	}
}

const wrkSample = `Running 15s test @ http://127.0.0.1:8080
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.62ms    3.01ms  53.30ms   80.12%
    Req/Sec    11.52k   812.33    13.01k    71.33%
  Latency Distribution
     50%    5.10ms
     75%    6.93ms
     90%    8.29ms
     99%   13.20ms
  171948 requests in 15.00s, 20.67MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  11462.81
Transfer/sec:      1.38MB
SCRMGW-LOAD sent=172013 completed=171948 duration_us=15001234 status=7 connect=0 read=2 write=0 timeout=1 p50_us=5101 p90_us=8290 p99_us=13204 p999_us=19012 max_us=22301
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.RPS != 11462.81 || r.Completed != 171948 || r.Sent != 172012 {
		t.Errorf("rps %v completed %d sent %d", r.RPS, r.Completed, r.Sent)
	}
	if r.P50 != 5101*time.Microsecond || r.P99 != 13204*time.Microsecond || r.P999 != 19012*time.Microsecond || r.P75 != 6930*time.Microsecond {
		t.Errorf("latencies %v %v %v %v", r.P50, r.P75, r.P99, r.P999)
	}
	if r.Non2xx != 7 || r.SocketErrs != 3 || r.Timeouts != 1 || r.Errors() != 10 || r.Acked() != 171941 {
		t.Errorf("non-2xx %d socket %d timeouts %d errors %d acked %d", r.Non2xx, r.SocketErrs, r.Timeouts, r.Errors(), r.Acked())
	}
	if r.Duration != 15001234*time.Microsecond {
		t.Errorf("duration %v", r.Duration)
	}
	if _, err := parseWrk("Requests/sec: 1\n"); err == nil {
		t.Error("output without the script's line parsed")
	}
}
