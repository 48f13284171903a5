package bots

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestMemberCodeIntent: a member asking for their member code (zh, en,
// DingTalk's markdown) gets a code of the brand that verifies as them; a
// stranger gets none.
func TestMemberCodeIntent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := setupDeps(t, s)
		d.MemberCodes = membercode.New(s, nil)
		bot := Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Normalize())
		chen, err := s.MemberByIdentity(ctx, "wecom", "wmChen")
		if err != nil {
			t.Fatal(err)
		}
		digits := regexp.MustCompile(`97\d\d(?: \d{4}){3} \d\d`)
		for _, tc := range []struct {
			name, channel, sender, text string
			want                        []string
		}{
			{"zh", "wecom", "wmChen", "会员码", []string{"陈女士的山茶花会员码：\n", "前有效，过期请再发送“会员码”"}},
			{"zh in a sentence", "wecom", "wmChen", "请给我会员码", []string{"会员码："}},
			{"en", "wecom", "wmChen", "my member code please", []string{"Your 山茶花 member code:\n", "Valid until"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rs, err := bot.Handle(ctx, &Message{Channel: tc.channel, From: adapters.PartyMember, SenderID: tc.sender, Brand: "camellia", Text: tc.text})
				if err != nil || len(rs) != 1 {
					t.Fatalf("%v, %d replies", err, len(rs))
				}
				for _, w := range tc.want {
					if !strings.Contains(rs[0].Text, w) {
						t.Errorf("reply %q lacks %q", rs[0].Text, w)
					}
				}
				shown := digits.FindString(rs[0].Text)
				if shown == "" {
					t.Fatalf("reply %q has no grouped member code", rs[0].Text)
				}
				code := strings.ReplaceAll(shown, " ", "")
				id, err := d.MemberCodes.(*membercode.Codes).Identify(ctx, "camellia", code)
				if err != nil || id != chen.ID {
					t.Errorf("code %s identifies %d, %v; want member %d", code, id, err, chen.ID)
				}
			})
		}
		// A stranger on a channel the bot does not enrol on: no code.
		rs, err := bot.Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmNobody", Brand: "camellia", Text: "会员码"})
		if err != nil || len(rs) != 1 || !strings.Contains(rs[0].Text, "您还不是山茶花的会员") || regexp.MustCompile(`\d{4} \d{4}`).MatchString(rs[0].Text) {
			t.Errorf("stranger's answer: %v %+v", err, rs)
		}
		// With a public address, a link card to the code page follows:
		// news on WeCom, an action card on DingTalk.
		linked := membercode.New(s, nil)
		linked.PublicURL = "https://scrm.example.com/"
		d.MemberCodes = linked
		lbot := Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Normalize())
		if _, _, err := s.EnsureMember(ctx, store.NewMember{Phone: "13800138000", BrandID: "camellia",
			Identities: []store.Identity{{Channel: "dingtalk", ExternalID: "dtChen"}}}); err != nil {
			t.Fatal(err)
		}
		for channel, kind := range map[string]string{"wecom": "news", "dingtalk": "action_card"} {
			sender := map[string]string{"wecom": "wmChen", "dingtalk": "dtChen"}[channel]
			rs, err := lbot.Handle(ctx, &Message{Channel: channel, From: adapters.PartyMember, SenderID: sender, Brand: "camellia", Text: "会员码"})
			if err != nil || len(rs) != 2 {
				t.Fatalf("%s: %v, %d replies", channel, err, len(rs))
			}
			url := rs[1].Fields["url"] + rs[1].Fields["single_url"]
			if rs[1].Kind != kind || !strings.HasPrefix(url, "https://scrm.example.com/m/code/camellia.") {
				t.Errorf("%s link reply = %+v", channel, rs[1])
			}
			tok := strings.TrimPrefix(url, "https://scrm.example.com/m/code/")
			if _, _, brand, err := linked.LinkedCode(ctx, tok); err != nil || brand != "camellia" {
				t.Errorf("link token: %s %v", brand, err)
			}
			if kind == "news" && rs[1].Fields["picurl"] != "https://scrm.example.com/m/code-card.png" {
				t.Errorf("card picture %q", rs[1].Fields["picurl"])
			}
		}
		d.MemberCodes = membercode.New(s, nil)

		// The code's validity is told in Shanghai time (the store's zone).
		rs, _ = bot.Handle(ctx, &Message{Channel: "wecom", From: adapters.PartyMember, SenderID: "wmChen", Brand: "camellia", Text: "会员码"})
		until := membercode.ValidUntil(time.Now()).In(zoneOf("Asia/Shanghai")).Format("15:04")
		if prev := membercode.ValidUntil(time.Now().Add(-membercode.Step)).In(zoneOf("Asia/Shanghai")).Format("15:04"); !strings.Contains(rs[0].Text, until+"前有效") && !strings.Contains(rs[0].Text, prev+"前有效") {
			t.Errorf("reply %q does not say valid until %s", rs[0].Text, until)
		}
	})
}
