package outbox

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/scrmgw/scrmgw/adapters"
)

// Rate is how many sends a channel allows per period.
type Rate struct {
	N   int
	Per time.Duration
}

// Unlimited is the Rate of a channel with no limit.
var Unlimited = Rate{}

// Limited reports whether r limits anything.
func (r Rate) Limited() bool { return r.N > 0 && r.Per > 0 }

// PerSecond is r in sends per second.
func (r Rate) PerSecond() float64 {
	if !r.Limited() {
		return math.Inf(1)
	}
	return float64(r.N) / r.Per.Seconds()
}

// String writes r as ParseRate reads it.
func (r Rate) String() string {
	if !r.Limited() {
		return "off"
	}
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "min", time.Hour: "h"}[r.Per]
	return strconv.Itoa(r.N) + "/" + unit
}

// ParseRate reads a rate as written in the configuration: "50/s",
// "600/min", "100000/h", or "off" for none.
func ParseRate(s string) (Rate, error) {
	t := strings.ToLower(strings.ReplaceAll(s, " ", ""))
	if t == "off" || t == "none" || t == "0" {
		return Unlimited, nil
	}
	num, unit, ok := strings.Cut(t, "/")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("bad rate %q: write a whole number of sends per s, min or h, like 50/s or 600/min, or off", s)
	}
	per, ok := map[string]time.Duration{"s": time.Second, "sec": time.Second, "second": time.Second,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "h": time.Hour, "hour": time.Hour}[unit]
	if !ok {
		return Rate{}, fmt.Errorf("bad rate %q: unknown unit %q; use s, min or h", s, unit)
	}
	return Rate{N: n, Per: per}, nil
}

// DefaultCriticalShare is the part of a channel's rate kept for the
// critical queue (welcomes, which WeCom accepts only for 20 seconds).
const DefaultCriticalShare = 0.2

// LimiterOptions tune a Limiter.
type LimiterOptions struct {
	// Channels are the channel instances; each is limited to its spec's
	// default rate (adapters.Spec.Rate, below the platform's published
	// limits), if any, unless Rates names it.
	Channels adapters.Specs
	// Rates are the channel instances' rates (by key), over their
	// defaults.
	Rates map[string]Rate
	// CriticalShare is the part of each rate kept for sends on the
	// critical queue, which then do not wait behind a backlog of others;
	// the rest is for the other queues. Default DefaultCriticalShare;
	// negative: one lane for all.
	CriticalShare float64
	// Prefix starts the Redis keys; default "scrmgw:rate:".
	Prefix string
}

// Limiter spaces each channel's sends evenly at its rate. The schedule
// lives in Redis, so every replica shares one limit: one key per channel
// (and lane) holding the time the next send may go (GCRA), advanced
// atomically by a script reading the Redis server's clock.
type Limiter struct {
	rdb    redis.Scripter
	rates  map[string]Rate
	share  float64
	prefix string
}

// NewLimiter returns a Limiter on a Redis client.
func NewLimiter(rdb redis.Scripter, opts LimiterOptions) *Limiter {
	rates := make(map[string]Rate, len(opts.Rates))
	if opts.Channels != nil {
		for _, key := range opts.Channels.Names() {
			if sp, ok := opts.Channels.Spec(key); ok && !sp.Rate.IsZero() {
				rates[key] = Rate{N: sp.Rate.N, Per: sp.Rate.Per}
			}
		}
	}
	for ch, r := range opts.Rates {
		rates[ch] = r
	}
	if opts.CriticalShare == 0 {
		opts.CriticalShare = DefaultCriticalShare
	}
	if opts.CriticalShare >= 1 {
		opts.CriticalShare = 0.5
	}
	if opts.Prefix == "" {
		opts.Prefix = "scrmgw:rate:"
	}
	return &Limiter{rdb: rdb, rates: rates, share: opts.CriticalShare, prefix: opts.Prefix}
}

// Rate returns the rate of a channel.
func (l *Limiter) Rate(channel string) Rate { return l.rates[channel] }

// Rates describes every limited channel's rate, for the start-up log.
func (l *Limiter) Rates() string {
	var parts []string
	for ch, r := range l.rates {
		if r.Limited() {
			parts = append(parts, ch+"="+r.String())
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// reserveScript takes the next slot of a bucket. KEYS[1] holds the
// theoretical arrival time (TAT) of the next send in microseconds of the
// Redis clock; ARGV[1] is the interval between sends in microseconds. It
// returns how many microseconds from now the taken slot is, and the slot.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nexttat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.ceil((nexttat - now) / 1000) + 1000)
return {tat - now, string.format('%.0f', tat)}
`)

// Reserve takes the next send slot of a channel and returns how long
// from now it is: the caller sends then, not before. A critical send
// takes from the critical lane. A channel without a rate returns 0 at
// once. Every call takes a slot: a slot not used is lost, which errs on
// the side of the platform's limit.
func (l *Limiter) Reserve(ctx context.Context, channel string, critical bool) (time.Duration, error) {
	wait, _, err := l.reserve(ctx, channel, critical)
	return wait, err
}

// reserve is Reserve, also returning the slot in microseconds of the Redis
// clock.
func (l *Limiter) reserve(ctx context.Context, channel string, critical bool) (time.Duration, int64, error) {
	r := l.rates[channel]
	if !r.Limited() {
		return 0, 0, nil
	}
	perSec, key := r.PerSecond(), l.prefix+channel
	if l.share > 0 {
		if critical {
			perSec, key = perSec*l.share, key+":critical"
		} else {
			perSec *= 1 - l.share
		}
	}
	interval := int64(math.Ceil(1e6 / perSec))
	res, err := reserveScript.Run(ctx, l.rdb, []string{key}, interval).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("reserving a %s send slot: %w", channel, err)
	}
	if len(res) != 2 {
		return 0, 0, fmt.Errorf("reserving a %s send slot: unexpected reply %v", channel, res)
	}
	us, ok := res[0].(int64)
	slot, perr := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	if !ok || perr != nil {
		return 0, 0, fmt.Errorf("reserving a %s send slot: unexpected reply %v", channel, res)
	}
	return time.Duration(us) * time.Microsecond, slot, nil
}
