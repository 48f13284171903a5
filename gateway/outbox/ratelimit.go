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

// DefaultCriticalShare is the part of a channel's rate, and of each of
// its call windows, kept for the critical queue (welcomes, which WeCom
// accepts only for 20 seconds).
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
	// Windows are the channel instances' call budgets per fixed window
	// of the clock (by key), over their specs' (adapters.Spec.Windows).
	Windows map[string][]Rate
	// CriticalShare is the part of each rate kept for sends on the
	// critical queue, which then do not wait behind a backlog of others;
	// the rest is for the other queues. Of a call window, the other
	// queues may take all but this share, and none of a window after a
	// critical send found the one before full. Default
	// DefaultCriticalShare; negative: one lane for all.
	CriticalShare float64
	// Prefix starts the Redis keys; default "scrmgw:rate:".
	Prefix string
}

// Limiter spaces each channel's sends evenly at its rate, and keeps them
// within the channel's call windows (WeCom: 10,000 a minute and 150,000
// an hour per corp, counted in windows of the clock). The schedule lives
// in Redis, so every replica shares one limit: one key per channel (and
// lane) holding the time the next send may go (GCRA), and one counter
// per channel and window, advanced atomically by a script reading the
// Redis server's clock.
//
// Welcomes (the critical lane) come first: their lane is spaced at the
// channel's rate, or at the pace of its shortest call window when that
// is faster (WeCom: 10,000 a minute, 166/s), while the others share the
// rest of the rate; of each window
// the others take at most all but the critical share, and when a welcome
// finds a window full, the others leave the next window to the welcomes
// altogether. A welcome that has no slot before its code expires takes
// none (ReserveBy).
type Limiter struct {
	rdb     redis.Scripter
	rates   map[string]Rate
	windows map[string][]Rate
	share   float64
	prefix  string
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
	windows := make(map[string][]Rate, len(opts.Windows))
	if opts.Channels != nil {
		for _, key := range opts.Channels.Names() {
			if sp, ok := opts.Channels.Spec(key); ok {
				for _, w := range sp.Windows {
					if !w.IsZero() {
						windows[key] = append(windows[key], Rate{N: w.N, Per: w.Per})
					}
				}
			}
		}
	}
	for ch, ws := range opts.Windows {
		windows[ch] = ws
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
	return &Limiter{rdb: rdb, rates: rates, windows: windows, share: opts.CriticalShare, prefix: opts.Prefix}
}

// Rate returns the rate of a channel.
func (l *Limiter) Rate(channel string) Rate { return l.rates[channel] }

// Windows returns the call windows of a channel.
func (l *Limiter) Windows(channel string) []Rate { return l.windows[channel] }

// Rates describes every limited channel's rate (and windows), for the
// start-up log.
func (l *Limiter) Rates() string {
	var parts []string
	for ch, r := range l.rates {
		if r.Limited() {
			p := ch + "=" + r.String()
			for _, w := range l.windows[ch] {
				p += "," + w.String()
			}
			parts = append(parts, p)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// reserveScript takes the next slot of a lane within the channel's
// windows. KEYS[1] holds the lane's theoretical arrival time (TAT) of the
// next send in microseconds of the Redis clock; KEYS[2] starts the keys
// of the channel's window counters. ARGV: the interval between sends
// (µs); the longest wait to take a slot at (µs, -1 for any); 1 for the
// critical lane; the share of a window the other lanes may take; then
// each window's length (µs) and budget. A window with its budget spent
// (for the other lanes: their share of it, or any of it after a critical
// send found the window before full) moves the slot to the next window.
// It returns how many microseconds from now the slot is and the slot, or
// -1 and the wait when the slot is too far: then nothing is taken.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local maxwait = tonumber(ARGV[2])
local critical = ARGV[3] == '1'
local othershare = tonumber(ARGV[4])
local nw = (#ARGV - 4) / 2
local slot = tonumber(redis.call('GET', KEYS[1]) or '0')
if slot < now then slot = now end
for round = 1, 100 do
  local moved = false
  for i = 0, nw - 1 do
    local size = tonumber(ARGV[5 + 2 * i])
    local budget = tonumber(ARGV[6 + 2 * i])
    local idx = math.floor(slot / size)
    local key = KEYS[2] .. ':' .. size .. ':' .. string.format('%.0f', idx)
    local n = tonumber(redis.call('GET', key) or '0')
    local cap = budget
    if not critical then
      cap = math.floor(budget * othershare)
      if redis.call('EXISTS', key .. ':yield') == 1 then cap = 0 end
    end
    if n >= cap then
      if critical then
        local nextkey = KEYS[2] .. ':' .. size .. ':' .. string.format('%.0f', idx + 1) .. ':yield'
        redis.call('SET', nextkey, '1', 'PX', math.ceil(((idx + 2) * size - now) / 1000) + 1000)
      end
      slot = (idx + 1) * size
      moved = true
    end
  end
  if not moved then break end
end
if maxwait >= 0 and slot - now > maxwait then
  return {-1, string.format('%.0f', slot - now)}
end
for i = 0, nw - 1 do
  local size = tonumber(ARGV[5 + 2 * i])
  local idx = math.floor(slot / size)
  local key = KEYS[2] .. ':' .. size .. ':' .. string.format('%.0f', idx)
  redis.call('INCR', key)
  redis.call('PEXPIRE', key, math.ceil(((idx + 1) * size - now) / 1000) + 1000)
end
local nexttat = slot + interval
redis.call('SET', KEYS[1], string.format('%.0f', nexttat), 'PX', math.ceil((nexttat - now) / 1000) + 1000)
return {slot - now, string.format('%.0f', slot)}
`)

// windowPace is the budget of the shortest call window spread evenly
// over it, in sends per second (0 without windows).
func windowPace(windows []Rate) float64 {
	var shortest Rate
	for _, w := range windows {
		if w.Limited() && (shortest.Per == 0 || w.Per < shortest.Per) {
			shortest = w
		}
	}
	if shortest.Per == 0 {
		return 0
	}
	return shortest.PerSecond()
}

// NoSlotError is ReserveBy's error when a channel has no send slot before
// the deadline: nothing was reserved; Wait is how far the first free slot
// was.
type NoSlotError struct {
	Channel string
	Wait    time.Duration
}

func (e *NoSlotError) Error() string {
	return fmt.Sprintf("no %s send slot in time: the first free one is %s away", e.Channel, e.Wait.Round(time.Millisecond))
}

// Reserve takes the next send slot of a channel and returns how long
// from now it is: the caller sends then, not before. A critical send
// takes from the critical lane. A channel without a rate or windows
// returns 0 at once. Every call takes a slot: a slot not used is lost,
// which errs on the side of the platform's limit.
func (l *Limiter) Reserve(ctx context.Context, channel string, critical bool) (time.Duration, error) {
	wait, _, err := l.reserve(ctx, channel, critical, time.Time{})
	return wait, err
}

// ReserveBy is Reserve for a send that is worthless after by (a welcome,
// whose code expires): when the channel's first free slot is later,
// nothing is taken and the error is a *NoSlotError. A zero by is no
// deadline.
func (l *Limiter) ReserveBy(ctx context.Context, channel string, critical bool, by time.Time) (time.Duration, error) {
	wait, _, err := l.reserve(ctx, channel, critical, by)
	return wait, err
}

// reserve is ReserveBy, also returning the slot in microseconds of the
// Redis clock.
func (l *Limiter) reserve(ctx context.Context, channel string, critical bool, by time.Time) (time.Duration, int64, error) {
	r, windows := l.rates[channel], l.windows[channel]
	if !r.Limited() && len(windows) == 0 {
		return 0, 0, nil
	}
	key := l.prefix + channel
	interval := int64(0)
	if r.Limited() {
		perSec := r.PerSecond()
		if l.share > 0 {
			// The critical lane is spaced at the whole rate, or at the
			// pace of the shortest call window if that is faster
			// (WeCom's 10,000 a minute: 166/s): only welcomes use it,
			// bounded by the windows, and a crowd's welcomes must
			// all go within their codes' 20 seconds.
			if critical {
				key += ":critical"
				perSec = max(perSec, windowPace(windows))
			} else {
				perSec *= 1 - l.share
			}
		}
		interval = int64(math.Ceil(1e6 / perSec))
	} else if critical && l.share > 0 {
		key += ":critical"
	}
	maxWait := int64(-1)
	if !by.IsZero() {
		maxWait = max(time.Until(by).Microseconds(), 0)
	}
	others := 1.0
	if l.share > 0 {
		others = 1 - l.share
	}
	crit := "0"
	if critical {
		crit = "1"
	}
	args := []any{interval, maxWait, crit, others}
	for _, w := range windows {
		args = append(args, w.Per.Microseconds(), w.N)
	}
	res, err := reserveScript.Run(ctx, l.rdb, []string{key, l.prefix + channel + ":win"}, args...).Slice()
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
	if us < 0 {
		return 0, 0, &NoSlotError{Channel: channel, Wait: time.Duration(slot) * time.Microsecond}
	}
	return time.Duration(us) * time.Microsecond, slot, nil
}
