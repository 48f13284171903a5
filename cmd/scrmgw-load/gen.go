package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom"
	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
	"github.com/scrmgw/scrmgw/cmd/internal/subcmd"
)

// Files gen writes into its output directory.
const (
	requestsFile = "requests.tsv" // one request a line: path?query TAB body
	keysFile     = "keys.txt"     // the inbox dedup key of each request, same order
	metaFile     = "meta.json"
	luaFile      = "callbacks.lua"
)

// genMeta describes a generated request set.
type genMeta struct {
	N              int       `json:"n"`
	Kind           string    `json:"kind"`
	Texts          int       `json:"texts"`
	Contacts       int       `json:"contacts"`
	RunID          string    `json:"run_id"`
	CorpID         string    `json:"corp_id"`
	AgentID        string    `json:"agent_id"`
	Token          string    `json:"token"`
	EncodingAESKey string    `json:"encoding_aes_key"`
	Path           string    `json:"path"`
	GeneratedAt    time.Time `json:"generated_at"`
	Bytes          int64     `json:"bytes"`
}

type genConfig struct {
	N    int
	Kind string
	Out  string
}

func genMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c genConfig
	fs := newFlagSet("gen", stderr)
	fs.IntVar(&c.N, "n", 400_000, "number of distinct callbacks")
	fs.StringVar(&c.Kind, "kind", "text", "text (employee text messages, unique MsgId), contact (add_external_contact events) or mix (4 texts : 1 contact)")
	fs.StringVar(&c.Out, "out", "", "output directory (required)")
	if err := fs.Parse(args); err != nil {
		return subcmd.ErrUsage
	}
	if c.Out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "scrmgw-load gen: --out DIR is required and no arguments are taken")
		return subcmd.ErrUsage
	}
	meta, err := generate(ctx, c, stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d %s callbacks (%d texts, %d contacts, %.1f MB) and %s to %s\n",
		meta.N, meta.Kind, meta.Texts, meta.Contacts, float64(meta.Bytes)/1e6, luaFile, c.Out)
	return nil
}

// generate writes c.N callbacks, their dedup keys, the metadata and the
// wrk script into c.Out.
func generate(ctx context.Context, c genConfig, logw io.Writer) (*genMeta, error) {
	if c.N <= 0 {
		return nil, fmt.Errorf("--n must be positive")
	}
	switch c.Kind {
	case "text", "contact", "mix":
	default:
		return nil, fmt.Errorf("--kind %q: want text, contact or mix", c.Kind)
	}
	if err := os.MkdirAll(c.Out, 0o755); err != nil {
		return nil, err
	}
	out, err := filepath.Abs(c.Out)
	if err != nil {
		return nil, err
	}
	// A run id keeps MsgIds and external user ids of separate gen runs
	// apart, so two request sets never dedupe against each other.
	var rb [4]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, err
	}
	runID := binary.BigEndian.Uint32(rb[:])
	start := time.Now()

	lines := make([]string, c.N)
	keys := make([]string, c.N)
	isContact := func(i int) bool {
		switch c.Kind {
		case "contact":
			return true
		case "mix":
			return i%5 == 4
		}
		return false
	}
	workers := runtime.GOMAXPROCS(0)
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		genErr  error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < c.N; i += workers {
				if i%4096 == 0 && ctx.Err() != nil {
					errOnce.Do(func() { genErr = ctx.Err() })
					return
				}
				line, key, err := genOne(runID, i, isContact(i))
				if err != nil {
					errOnce.Do(func() { genErr = fmt.Errorf("callback %d: %w", i, err) })
					return
				}
				lines[i], keys[i] = line, key
			}
		}(w)
	}
	wg.Wait()
	if genErr != nil {
		return nil, genErr
	}

	meta := &genMeta{N: c.N, Kind: c.Kind, RunID: fmt.Sprintf("%08x", runID),
		CorpID: wecomfake.DefaultCorpID, AgentID: wecomfake.DefaultAgentID, Token: wecomfake.DefaultToken,
		EncodingAESKey: wecomfake.DefaultEncodingAESKey, Path: wecom.CallbackPath, GeneratedAt: start.UTC()}
	for i := range c.N {
		if isContact(i) {
			meta.Contacts++
		} else {
			meta.Texts++
		}
	}
	seen := make(map[string]struct{}, c.N)
	for i, k := range keys {
		if _, dup := seen[k]; dup {
			return nil, fmt.Errorf("callback %d: dedup key %q generated twice", i, k)
		}
		seen[k] = struct{}{}
	}
	if meta.Bytes, err = writeLines(filepath.Join(out, requestsFile), lines); err != nil {
		return nil, err
	}
	if _, err := writeLines(filepath.Join(out, keysFile), keys); err != nil {
		return nil, err
	}
	mb, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(out, metaFile), append(mb, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, luaFile), []byte(luaScript(filepath.Join(out, requestsFile))), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "generated %d callbacks in %s\n", c.N, time.Since(start).Round(time.Millisecond))
	return meta, nil
}

// genOne seals callback i with wecomfake, exactly as WeCom would send it,
// and returns its request line and inbox dedup key.
func genOne(runID uint32, i int, contact bool) (line, key string, err error) {
	var (
		plain []byte
		cb    wecomfake.Callback // default corp, token and key; timestamp now
	)
	if contact {
		ev := wecomfake.AddExternalContact(
			fmt.Sprintf("guide%04d", i%2000),
			fmt.Sprintf("wmLoad%08x%07d", runID, i),
			fmt.Sprintf("store-%d", i%5000),
			fmt.Sprintf("WELCOME%08x%07d", runID, i))
		plain = ev.XML()
	} else {
		m := wecomfake.EmployeeText(wecomfake.DefaultAgentID, fmt.Sprintf("guide%04d", i%2000),
			fmt.Sprintf("会员 %d 问：今天店里有新到的春季款吗？能帮我留一件 M 码吗？", i))
		// Unique per request set and per request; positive int64.
		m.MsgID = strconv.FormatUint(7_000_000_000_000_000_000+uint64(runID)<<24+uint64(i), 10)
		plain = m.XML()
		cb.AgentID = wecomfake.DefaultAgentID
	}
	msg, err := wecom.ParseMessage(plain)
	if err != nil {
		return "", "", err
	}
	body, query, err := cb.Seal(plain)
	if err != nil {
		return "", "", err
	}
	if strings.ContainsAny(string(body), "\t\n") {
		return "", "", fmt.Errorf("body holds a tab or newline")
	}
	return wecom.CallbackPath + "?" + query.Encode() + "\t" + string(body), msg.DedupKey(), nil
}

func writeLines(path string, lines []string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var n int64
	for _, l := range lines {
		k, _ := w.WriteString(l)
		w.WriteByte('\n')
		n += int64(k) + 1
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return 0, err
	}
	return n, f.Close()
}

// readKeys reads the dedup keys gen wrote.
func readKeys(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, keysFile))
	if err != nil {
		return nil, err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\n"), nil
}

func readMeta(dir string) (*genMeta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, err
	}
	var m genMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	return &m, nil
}

// luaScript is the wrk script: it loads every request once per wrk thread
// in init (before wrk starts its clock), pre-formats them, and cycles
// through them from an offset given as the script's first argument, so
// that consecutive wrk runs continue the cycle. It counts what it sent and
// prints one machine-readable line at the end.
func luaScript(requests string) string {
	return `-- Generated by scrmgw-load gen. Cycles through pre-generated, signed and
-- encrypted WeCom callbacks (POST, Content-Type text/xml), one per line of
-- requests.tsv: path?query TAB body.
--   wrk -t1 -c64 -d15s --latency -s callbacks.lua http://127.0.0.1:8080 -- OFFSET
local file = "` + luaQuote(requests) + `"
local reqs, n, pos = {}, 0, 0
sent = 0

function init(args)
  local headers = { ["Content-Type"] = "text/xml" }
  for line in io.lines(file) do
    local tab = line:find("\t", 1, true)
    if tab then
      n = n + 1
      reqs[n] = wrk.format("POST", line:sub(1, tab - 1), headers, line:sub(tab + 1))
    end
  end
  assert(n > 0, "no requests in " .. file)
  local offset = tonumber(args[1] or "0") or 0
  pos = offset % n
end

function request()
  pos = pos + 1
  if pos > n then pos = 1 end
  sent = sent + 1
  return reqs[pos]
end

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("sent") or 0)
  end
  local e = summary.errors
  io.write(string.format("SCRMGW-LOAD sent=%d completed=%d duration_us=%d status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d\n",
    total, summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max))
end
`
}

func luaQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
