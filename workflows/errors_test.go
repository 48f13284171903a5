package workflows

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scrmgw/scrmgw/templates"
)

// head is the start of most test workflows: lines 1 to 7, steps follow
// from line 8.
const head = `name: recall
trigger:
  event: member.joined
entry:
  brand: camellia
goal: purchase.completed
steps:
`

// testTemplates has the shipped templates plus one with only a WeCom
// variant.
func testTemplates(t testing.TB) *templates.Registry {
	t.Helper()
	reg, err := templates.LoadDir("../configs/templates")
	if err != nil {
		t.Fatal(err)
	}
	only := "locales:\n  zh:\n    wecom:\n      kind: news\n      title: 新品\n      url: https://example.com\n"
	if err := reg.Add("wecom_only.yaml", []byte(only)); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestLoadErrors has a case for every kind of problem Load reports, with
// the exact message, line and column a marketer sees.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unknown channel",
			yaml: head + "  - id: welcome\n    send: welcome\n    channel: wecomm\n",
			want: []string{`recall.yaml:10:14: steps[0].channel: unknown channel "wecomm" (did you mean "wecom"?)`},
		},
		{
			name: "unknown step kind",
			yaml: head + "  - id: welcome\n    sned: welcome\n",
			want: []string{`recall.yaml:9:5: steps[0].sned: unknown step kind "sned" (did you mean "send"?)`},
		},
		{
			name: "missing step kind",
			yaml: head + "  - id: welcome\n    channel: wecom\n",
			want: []string{`recall.yaml:8:5: steps[0]: missing step kind: a step needs one of assign_guide, send, guide_task, wait, wait_for, if, switch, tag, untag, award_points, webhook, send_groups or end`},
		},
		{
			name: "two kinds in one step",
			yaml: head + "  - id: welcome\n    send: welcome\n    wait: 3d\n",
			want: []string{`recall.yaml:10:5: steps[0].wait: a step does one thing, but this one is both send and wait: split it into two steps`},
		},
		{
			name: "unknown field",
			yaml: head + "  - id: welcome\n    send: welcome\n    chanel: wecom\n",
			want: []string{`recall.yaml:10:5: steps[0].chanel: unknown field "chanel" (did you mean "channel"?)`},
		},
		{
			name: "field of another step kind",
			yaml: head + "  - id: welcome\n    send: welcome\n    timeout: 3d\n",
			want: []string{`recall.yaml:10:5: steps[0].timeout: a send step has no timeout (wait_for and webhook steps do)`},
		},
		{
			name: "next on a branching step and the field of another kind",
			yaml: head + "  - if: member.orders == 0\n    then: end\n    next: end\n  - untag: vip\n    reason: x\n",
			want: []string{
				`recall.yaml:10:5: steps[0].next: an if step does not take next: it goes on with then or else`,
				`recall.yaml:12:5: steps[1].reason: an untag step has no reason (award_points steps do)`,
			},
		},
		{
			name: "trigger shorthand and a city for a zone",
			yaml: "name: a\ntrigger: member.joined\nentry: {brand: b}\ngoal: none\nsend_rules: {time_zone: Beijing}\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:2:10: trigger: write the event under trigger: trigger: {event: member.joined}`,
				`recall.yaml:5:25: send_rules.time_zone: unknown time zone "Beijing" (did you mean "Asia/Shanghai"?); or use member or store`,
			},
		},
		{
			name: "cross-brand offer on an event, from its own brand and twice",
			yaml: "name: a\ntrigger: {event: member.joined}\nentry:\n  brand: yun\n  cross_brand_from: [camellia, yun, camellia, Acme]\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:4:3: entry.cross_brand_from: a cross-brand offer goes to a segment of the other brands' members: it needs a schedule trigger, not an event`,
				`recall.yaml:5:32: entry.cross_brand_from[1]: brand "yun" is the workflow's own brand: list the other brands whose guides may offer it`,
				`recall.yaml:5:37: entry.cross_brand_from[2]: brand "camellia" is listed twice`,
				`recall.yaml:5:47: entry.cross_brand_from[3]: bad brand id "Acme": use letters, digits, _ and - only`,
			},
		},
		{
			name: "unknown top-level field",
			yaml: "name: recall\ntrigers:\n  event: member.joined\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:1:1: missing trigger: say what starts a run, e.g. trigger: {event: member.joined}`,
				`recall.yaml:2:1: trigers: unknown field "trigers" (did you mean "trigger"?)`,
			},
		},
		{
			name: "bad durations",
			yaml: head + "  - wait: 3 days\n  - wait: 72\n  - wait: soon\n  - wait: 0m\n",
			want: []string{
				`recall.yaml:8:11: steps[0].wait: bad duration "3 days" (did you mean 3d?)`,
				`recall.yaml:9:11: steps[1].wait: duration "72" has no unit: write 72d for days, 72h for hours or 72m for minutes`,
				`recall.yaml:10:11: steps[2].wait: bad duration "soon": write a whole number and a unit, like 3d, 2w, 72h, 90m or 1h30m`,
				`recall.yaml:11:11: steps[3].wait: duration "0m" is zero: it must be longer`,
			},
		},
		{
			name: "expression errors point inside the expression",
			yaml: "name: recall\ntrigger:\n  event: member.joined\n  filter: member.levl == \"gold\"\nentry:\n  brand: camellia\ngoal: none\nsteps:\n" +
				"  - if: member.orders == \"0\"\n    then: end\n" +
				"  - if: 'membr.points > 10'\n    then: end\n" +
				"  - if: member.points + 1\n    then: end\n" +
				"  - if: |\n      member.points > 10 &&\n        member.level = \"gold\"\n    then: end\n" +
				"  - wait:\n      until: member.level\n",
			want: []string{
				`recall.yaml:4:18: trigger.filter: member has no field levl (did you mean "level"?)`,
				`recall.yaml:9:23: steps[0].if: == cannot compare a number with text`,
				`recall.yaml:11:10: steps[1].if: unknown name membr (did you mean "member"?)`,
				`recall.yaml:13:9: steps[2].if: this must be a condition (true or false), but it gives a number`,
				`recall.yaml:17:22: steps[3].if: unexpected token Operator("=")`,
				`recall.yaml:20:14: steps[4].wait.until: this must give a time (e.g. order.purchased_at + days(30)), but it gives text`,
			},
		},
		{
			name: "unknown template",
			yaml: head + "  - send: welcom\n",
			want: []string{`recall.yaml:8:11: steps[0].send: unknown template "welcom" (did you mean "welcome"?)`},
		},
		{
			name: "template the channel cannot render",
			yaml: head + "  - send: wecom_only\n  - send: wecom_only\n    channel: wecom\n",
			want: []string{`recall.yaml:8:11: steps[0].send: template "wecom_only" has neither a dingtalk variant nor a default one, so it cannot be sent on dingtalk`},
		},
		{
			name: "coupon template without a coupon",
			yaml: head + "  - send: win_back\n",
			want: []string{`recall.yaml:8:11: steps[0].send: template "win_back" shows a coupon (.Coupon) but this step issues none: add coupon: with the coupon batch`},
		},
		{
			name: "unknown step ids in transitions",
			yaml: head + "  - id: check\n    if: member.orders == 0\n    then: recal\n    else: ned\n  - id: recall\n    send: recall\n    next: nowhere\n",
			want: []string{
				`recall.yaml:10:11: steps[0].then: unknown step "recal" (did you mean "recall"?)`,
				`recall.yaml:11:11: steps[0].else: unknown step "ned" (did you mean "end"?)`,
				`recall.yaml:14:11: steps[1].next: unknown step "nowhere"`,
			},
		},
		{
			name: "unreachable step",
			yaml: head + "  - id: welcome\n    send: welcome\n    next: end\n  - id: recall\n    send: recall\n",
			want: []string{`recall.yaml:11:5: steps[1]: step "recall" is unreachable: no step leads to it (check the next, then, else and other transitions before it)`},
		},
		{
			name: "loop without a wait",
			yaml: head + "  - id: nudge\n    send: recall\n  - id: again\n    if: member.orders == 0\n    then: nudge\n",
			want: []string{`recall.yaml:8:5: steps[0]: steps "nudge" and "again" lead back to each other without a wait: a run would loop forever; put a wait or wait_for in the loop`},
		},
		{
			name: "loop with a wait is fine",
			yaml: head + "  - id: nudge\n    send: recall\n  - id: pause\n    wait: 1w\n  - id: again\n    if: member.orders == 0\n    then: nudge\n",
		},
		{
			name: "missing goal",
			yaml: "name: recall\ntrigger:\n  event: member.joined\nentry:\n  brand: camellia\nsteps:\n  - send: welcome\n",
			want: []string{`recall.yaml:1:1: goal: missing goal: a workflow that sends messages needs a goal, the event that counts a member as converted and stops the nudges (e.g. goal: purchase.completed); write goal: none if it has none`},
		},
		{
			name: "goal none",
			yaml: "name: recall\ntrigger:\n  event: member.joined\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - send: welcome\n",
		},
		{
			name: "malformed quiet hours and window",
			yaml: strings.Replace(head, "steps:\n", "send_rules:\n  quiet_hours: 21-9\n  send_window: 09:00-25:00\nsteps:\n", 1) + "  - send: welcome\n",
			want: []string{
				`recall.yaml:8:16: send_rules.quiet_hours: bad quiet hours: "21-9" is not a span of time: write it like 21:00-09:00, hours 00-23 and minutes 00-59`,
				`recall.yaml:9:16: send_rules.send_window: bad send window: "09:00-25:00" is not a span of time: write it like 21:00-09:00, hours 00-23 and minutes 00-59`,
			},
		},
		{
			name: "no time left to send",
			yaml: strings.Replace(head, "steps:\n", "send_rules:\n  quiet_hours: 21:00-09:00\n  send_window: 22:00-23:00\nsteps:\n", 1) + "  - send: welcome\n",
			want: []string{`recall.yaml:8:3: send_rules: these rules leave no time to send: the send window, send days and quiet hours never overlap`},
		},
		{
			name: "malformed caps",
			yaml: strings.Replace(head, "steps:\n", "send_rules:\n  caps:\n    per_day: 3\n    per_week: 2\n    when_capped: wait\n    per_month: 9\nsteps:\n", 1) + "  - send: welcome\n",
			want: []string{
				`recall.yaml:10:15: send_rules.caps.per_week: per_week (2) is less than per_day (3): a week would never reach the daily cap`,
				`recall.yaml:11:18: send_rules.caps.when_capped: unknown cap action "wait": use "delay" or "skip"`,
				`recall.yaml:12:5: send_rules.caps.per_month: unknown field "per_month"; the fields here are per_day, per_week and when_capped`,
			},
		},
		{
			name: "assign_guide: store_id with nearest",
			yaml: head + "  - assign_guide: nearest\n    store_id: S001\n",
			want: []string{`recall.yaml:9:15: steps[0].store_id: store_id is for assign_guide: store, not nearest`},
		},
		{
			name: "assign_guide: fallback that does not apply",
			yaml: head + "  - assign_guide: pool\n    fallback: nearest\n",
			want: []string{`recall.yaml:9:15: steps[0].fallback: fallback nearest does not apply to assign_guide: pool; use none`},
		},
		{
			name: "assign_guide: unknown strategy and fallback",
			yaml: head + "  - assign_guide: neareset\n    fallback: pol\n",
			want: []string{
				`recall.yaml:8:19: steps[0].assign_guide: unknown assignment "neareset" (did you mean "nearest"?)`,
				`recall.yaml:9:15: steps[0].fallback: unknown fallback "pol" (did you mean "pool"?)`,
			},
		},
		{
			name: "assign_guide: max distance without nearest",
			yaml: head + "  - assign_guide: store\n    store_id: S001\n    max_distance_km: 30\n",
			want: []string{`recall.yaml:10:22: steps[0].max_distance_km: max_distance_km is for the nearest assignment (assign_guide: nearest, or fallback: nearest), not store`},
		},
		{
			name: "assign_guide: bad store id",
			yaml: head + "  - assign_guide: store\n    store_id: \"S 001\"\n",
			want: []string{`recall.yaml:9:15: steps[0].store_id: bad store id "S 001": use letters, digits, _, - and .`},
		},
		{
			name: "send: when_capped",
			yaml: head + "  - send: welcome\n    when_capped: later\n",
			want: []string{`recall.yaml:9:18: steps[0].when_capped: unknown cap action "later": use "delay" or "skip"`},
		},
		{
			name: "zero and non-numeric caps",
			yaml: strings.Replace(head, "steps:\n", "send_rules:\n  caps: {per_day: 0, per_week: two}\nsteps:\n", 1) + "  - send: welcome\n",
			want: []string{
				`recall.yaml:8:19: send_rules.caps.per_day: per_day must be from 1 to 1000 (leave it out for no cap), got 0`,
				`recall.yaml:8:32: send_rules.caps.per_week: per_week must be a whole number of messages, got "two"`,
			},
		},
		{
			name: "schedule trigger problems",
			yaml: "name: recall\ntrigger:\n  schedule: every day at 25:00\n  time_zone: Asia/Shangai\n  segment:\n    last_purchase_between: [120d, 90d]\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:3:13: trigger.schedule: bad time of day "25:00" in schedule "every day at 25:00": write it like 10:00`,
				`recall.yaml:4:14: trigger.time_zone: unknown time zone "Asia/Shangai" (did you mean "Asia/Shanghai"?)`,
				`recall.yaml:6:28: trigger.segment.last_purchase_between: the first duration (120d) must not be longer than the second (90d)`,
			},
		},
		{
			name: "unreadable schedule",
			yaml: "name: a\ntrigger:\n  schedule: each morning\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{`recall.yaml:3:13: trigger.schedule: bad schedule "each morning": write it like "every day at 10:00", "every monday at 09:30", "every weekday at 10:00", "every month on day 1 at 10:00" or "every hour"`},
		},
		{
			name: "two documents in one file",
			yaml: "name: a\ntrigger:\n  schedule: every mondy and friday at 10:00\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n" +
				"---\nname: b\n",
			want: []string{`recall.yaml:9:1: bad YAML: a file holds one workflow: remove the second document (---)`},
		},
		{
			name: "misspelt day",
			yaml: "name: a\ntrigger:\n  schedule: every mondy and friday at 10:00\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{`recall.yaml:3:13: trigger.schedule: schedule "every mondy and friday at 10:00": unknown day "mondy" (did you mean "monday"?)`},
		},
		{
			name: "day of month every month has",
			yaml: "name: a\ntrigger:\n  schedule: every month on the 31st at 10:00\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{`recall.yaml:3:13: trigger.schedule: schedule "every month on the 31st at 10:00": use a day of the month from 1 to 28, which every month has`},
		},
		{
			name: "segment on an event trigger and both event and schedule",
			yaml: "name: recall\ntrigger:\n  event: member.joined\n  schedule: every mondy at 10:00\n  segment: {tags: [vip]}\nentry:\n  brand: camellia\ngoal: none\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:4:3: trigger.schedule: a trigger has an event or a schedule, not both`,
				`recall.yaml:5:3: trigger.segment: segment is only for schedule triggers`,
			},
		},
		{
			name: "unknown events",
			yaml: "name: recall\ntrigger:\n  event: purchase.complete\nentry:\n  brand: camellia\ngoal: [purchase.completed, store.visit]\nsteps:\n  - wait_for: guide_task.complete\n    timeout: 1d\n",
			want: []string{
				`recall.yaml:3:10: trigger.event: unknown event "purchase.complete" (did you mean "purchase.completed"?)`,
				`recall.yaml:6:28: goal[1]: unknown event "store.visit" (did you mean "store.visited"?)`,
				`recall.yaml:8:15: steps[0].wait_for: unknown event "guide_task.complete" (did you mean "guide_task.completed"?)`,
			},
		},
		{
			name: "custom events need a name",
			yaml: "name: recall\ntrigger:\n  event: x.\nentry:\n  brand: camellia\ngoal: [x.coupon_redeemed, y.other]\nsteps:\n  - wait: 1d\n",
			want: []string{
				`recall.yaml:3:10: trigger.event: unknown event "x."; events are member.joined, member.left, member.tagged, purchase.completed, ` +
					`purchase.refunded, message.received, store.visited, member.signed_up, member.updated, member.untagged, coupon.redeemed, coupon.unredeemed, live.scheduled, live.joined, live.left, live.ordered and live.cancelled, or x.<name> for a brand's own`,
				`recall.yaml:6:27: goal[1]: unknown event "y.other"; events are member.joined, member.left, member.tagged, purchase.completed, ` +
					`purchase.refunded, message.received, store.visited, member.signed_up, member.updated, member.untagged, coupon.redeemed, coupon.unredeemed, live.scheduled, live.joined, live.left, live.ordered, live.cancelled and guide_task.completed, ` +
					`or x.<name> for a brand's own`,
			},
		},
		{
			name: "re-entry",
			yaml: strings.Replace(head, "  brand: camellia\n", "  brand: camellia\n  re_entry: after 30 days\n", 1) + "  - wait: 1d\n",
			want: []string{`recall.yaml:6:13: entry.re_entry: bad duration "30 days" (did you mean 30d?)`},
		},
		{
			name: "step ids",
			yaml: head + "  - id: welcome\n    send: welcome\n  - id: welcome\n    wait: 1d\n  - id: Step 4\n    wait: 1d\n  - id: end\n    end:\n",
			want: []string{
				`recall.yaml:10:9: steps[1].id: steps[0] already has id "welcome"`,
				`recall.yaml:12:9: steps[2].id: bad step id "Step 4": use lowercase letters, digits, _ and -, starting with a letter`,
				`recall.yaml:14:9: steps[3].id: end is reserved: next: end ends the run; choose another id`,
			},
		},
		{
			name: "wait_for without timeout and if without branches",
			yaml: head + "  - id: reply\n    wait_for: message.received\n  - id: check\n    if: member.orders > 0\n",
			want: []string{
				`recall.yaml:8:5: steps[0]: missing timeout: how long to wait for message.received, e.g. timeout: 7d`,
				`recall.yaml:10:5: steps[1]: an if needs then or else: the step to go to when the condition holds, or when it does not (the other goes on to the next step)`,
			},
		},
		{
			name: "switch cases that can never match",
			yaml: head + "  - switch: member.orders\n    cases:\n      one: end\n      2: end\n",
			want: []string{`recall.yaml:10:7: steps[0].cases.one: case "one" is not a whole number, but the switch value is one`},
		},
		{
			name: "webhook",
			yaml: head + "  - webhook: http://crm.example.com/hook\n    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n    timeout: 2m\n",
			want: []string{
				`recall.yaml:8:14: steps[0].webhook: webhook URL "http://crm.example.com/hook" must use https: the request carries member data`,
				`recall.yaml:9:13: steps[0].secret: secret names a signing secret configured on the gateway (such as crm); never write the secret itself in a workflow`,
				`recall.yaml:10:14: steps[0].timeout: webhook timeout must be at most 30s, got 2m`,
			},
		},
		{
			name: "guide task title template",
			yaml: head + "  - guide_task: 回访 {{.Member.Nmae}}\n    due_in: 2 hours\n",
			want: []string{
				`recall.yaml:8:30: steps[0].guide_task: .Member.Nmae: Member has no field Nmae (did you mean "Name"?)`,
				`recall.yaml:9:13: steps[0].due_in: bad duration "2 hours" (did you mean 2h?)`,
			},
		},
		{
			name: "yaml syntax error",
			yaml: "name: recall\ntrigger:\n  event: member.joined\n   entry: x\n",
			want: []string{`recall.yaml:4:1: bad YAML: mapping values are not allowed in this context`},
		},
		{
			name: "aliases",
			yaml: head + "  - &w\n    wait: 1d\n  - *w\n",
			want: []string{`recall.yaml:10:5: anchors and aliases (*name) are not supported in workflows: write the value out`},
		},
		{
			name: "duplicate key",
			yaml: head + "  - send: welcome\n    send: recall\n",
			want: []string{`recall.yaml:9:5: steps[0].send: send is given twice`},
		},
		{
			name: "empty file",
			yaml: "# nothing yet\n",
			want: []string{`recall.yaml:1:1: empty file: a workflow needs name, trigger, entry and steps`},
		},
		{
			name: "not a mapping",
			yaml: "- send: welcome\n",
			want: []string{`recall.yaml:1:1: expected a workflow: a mapping with name, trigger, entry, goal, send_rules and steps, got a list`},
		},
		{
			name: "missing everything but name",
			yaml: "name: Recall Flow\n",
			want: []string{
				`recall.yaml:1:1: missing trigger: say what starts a run, e.g. trigger: {event: member.joined}`,
				`recall.yaml:1:1: missing entry: say at least which brand's members the workflow is for (entry: {brand: ...})`,
				`recall.yaml:1:1: missing steps: a workflow needs at least one step`,
				`recall.yaml:1:7: name: bad name "Recall Flow": use lowercase letters, digits, - and _ (it appears in URLs)`,
			},
		},
	}
	reg := testTemplates(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := Load("recall.yaml", []byte(tc.yaml), Options{Templates: reg, Channels: []string{"wecom", "dingtalk"}})
			var got []string
			if err != nil {
				var l ErrorList
				if !errors.As(err, &l) {
					t.Fatalf("error is %T, not an ErrorList: %v", err, err)
				}
				for _, e := range l {
					got = append(got, e.Error())
				}
				if w != nil {
					t.Error("Load returned a workflow with errors")
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
