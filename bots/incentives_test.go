package bots

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestIncentiveIntents: my orders, other brands' offers and the
// leaderboard, in zh and en, and on DingTalk's markdown variant.
func TestIncentiveIntents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		d := setupDeps(t, s)
		d.Guides = s
		bot := Chain(&Router{Member: MemberBot(d), Guide: GuideBot(d)}, Normalize())
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		// 静安店 also carries 云朵 (a collection store).
		must(s.CreateBrand(ctx, &store.Brand{ID: "yun", Name: "云朵"}))
		ja, err := s.RetailStore(ctx, "ja", "")
		must(err)
		ja.BrandIDs = []string{"camellia", "yun"}
		must(s.UpsertRetailStores(ctx, []store.RetailStore{*ja}))
		v, err := s.MemberByIdentity(ctx, "wecom", "wmChen")
		must(err)

		say := func(channel, sender string, from adapters.Party, text string) string {
			t.Helper()
			rs, err := bot.Handle(ctx, &Message{Channel: channel, From: from, SenderID: sender, Brand: "camellia", Text: text})
			if err != nil || len(rs) != 1 {
				t.Fatalf("%q: %v, %d replies", text, err, len(rs))
			}
			return rs[0].Text
		}
		member := func(text string) string { return say("wecom", "wmChen", adapters.PartyMember, text) }
		wantIn := func(what, got string, want ...string) {
			t.Helper()
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("%s: %q lacks %q", what, got, w)
				}
			}
		}

		// No orders yet.
		wantIn("no orders", member("我的订单"), "暂时没有查到您在山茶花的订单")
		// Four orders: the last three are listed, newest first; times in
		// the store's zone; a refund shown.
		ja2 := "ja"
		for i, o := range []struct {
			no    string
			day   int
			item  string
			cents int64
		}{{"SO-1", 1, "旧订单", 1000}, {"SO-2", 5, "洁面乳", 12900}, {"SO-3", 9, "爽肤水", 9950}, {"SO-4", 20, "精华", 45800}} {
			ord := &store.Order{BrandID: "camellia", OrderNo: o.no, MemberID: v.ID, StoreID: &ja2, Channel: "pos", Currency: "CNY", Attribution: "none",
				PlacedAt: time.Date(2026, 11, o.day, 16, 30, 0, 0, time.UTC), SettleDate: "2026-11-01", // 00:30 the next day in Shanghai
				Items: []store.OrderItem{{SKU: "S" + o.no, Name: o.item, Qty: 1, PriceCents: o.cents}}}
			if i == 1 {
				ord.StoreID = nil // online
			}
			if _, err := s.RecordOrder(ctx, ord, nil); err != nil {
				t.Fatal(err)
			}
		}
		o3, _ := s.OrderByNo(ctx, "camellia", "SO-3")
		if _, err := s.RecordRefund(ctx, &store.Refund{BrandID: "camellia", RefundNo: "RF-1", OrderID: o3.ID, AmountCents: 9950, RefundedAt: time.Now(),
			SettleDate: "2026-11-10", Items: []store.RefundItem{{Line: 1, Qty: 1}}}, v.ID, nil); err != nil {
			t.Fatal(err)
		}
		got := member("查一下我的订单")
		wantIn("my orders", got, "陈女士最近的订单", "2026-11-21 静安店：精华，合计 ¥458", "2026-11-10 静安店：爽肤水，合计 ¥99.50（已退款 ¥99.50）", "2026-11-06 线上：洁面乳，合计 ¥129")
		if strings.Contains(got, "旧订单") || strings.Index(got, "精华") > strings.Index(got, "爽肤水") {
			t.Errorf("my orders lists the fourth or not newest first: %q", got)
		}
		wantIn("my orders in English", member("my orders"), "Your recent orders:", "2026-11-21 静安店: 精华, total ¥458")
		rs, _ := bot.Handle(ctx, &Message{Channel: "dingtalk", From: adapters.PartyMember, SenderID: "nobody", Brand: "camellia", Text: "我的订单"})
		if len(rs) != 1 || rs[0].Kind != "markdown" || !strings.Contains(rs[0].Text, "暂时没有查到") {
			t.Errorf("unknown member on DingTalk: %+v", rs)
		}

		// Other brands' offers: accepting names 云朵 and lets 云朵 nudge
		// through Li; declining takes it back; the store keeps it per brand.
		allowed := func() bool {
			ok, _, err := s.CrossBrandAllowed(ctx, v.ID, "camellia", "yun", "wecom")
			must(err)
			return ok
		}
		if allowed() {
			t.Fatal("cross-brand allowed before any opt-in")
		}
		wantIn("opt in", member("我想接收其他品牌优惠"), "您的专属导购 李娜 也可以为您推荐云朵的优惠")
		if !allowed() {
			t.Error("cross-brand not allowed after the opt-in")
		}
		wantIn("opt out", member("不接收其他品牌优惠"), "不会再通过导购收到其他品牌的优惠")
		if allowed() {
			t.Error("cross-brand still allowed after declining")
		}
		wantIn("opt in, English", member("other brands offers please"), "offers from 云朵")
		wantIn("opt out, English", member("no other brands"), "won't get other brands' offers")
		if allowed() {
			t.Error("cross-brand allowed after declining in English")
		}
		// One brand by name; a name the store does not carry lists those
		// it does and records nothing.
		wantIn("opt in to one brand", member("接收云朵优惠"), "推荐云朵的优惠")
		if !allowed() {
			t.Error("cross-brand not allowed after opting in to 云朵 by name")
		}
		wantIn("opt out of one brand", member("拒绝 云朵 的优惠"), "不会再通过导购收到云朵的优惠")
		if allowed() {
			t.Error("cross-brand allowed after declining 云朵 by name")
		}
		wantIn("unknown brand", member("接收耐克优惠"), "您的门店没有“耐克”这个品牌", "其他品牌：云朵")
		wantIn("unknown brand, English", member("accept nike offers"), `Your store has no brand "nike"`, "offer: 云朵")
		if allowed() {
			t.Error("an unknown brand's opt-in allowed 云朵")
		}
		wantIn("all, by pattern", member("接收其他品牌的优惠"), "推荐云朵的优惠")
		if !allowed() {
			t.Error("cross-brand not allowed after 接收其他品牌的优惠")
		}
		// "不要再发优惠" is an unsubscribe, not a brand named "再发".
		wantIn("unsubscribe wording", member("不要再发优惠了"), "已为您退订")
		if allowed() {
			t.Error("cross-brand allowed after unsubscribing from the brand")
		}

		// Leaderboard: Li second in her store and brand; Wu (other store)
		// first in the brand, absent from Li's store board.
		month := time.Now().In(zoneOf("")).Format("2006-01")
		_, err = s.AwardGuidePoints(ctx, []store.GuidePointsEntry{
			{Key: "a", Kind: store.GuidePointsBound, GuideID: "li", BrandID: "camellia", StoreID: "ja", Month: month, Points: 40, EarnedAt: time.Now()},
			{Key: "b", Kind: store.GuidePointsBound, GuideID: "wu", BrandID: "camellia", StoreID: "xtd", Month: month, Points: 90, EarnedAt: time.Now()},
		})
		must(err)
		must(s.CreateGuide(ctx, &store.Guide{ID: "zhao", StoreID: "ja", Name: "赵敏", Active: true}))
		_, err = s.AwardGuidePoints(ctx, []store.GuidePointsEntry{
			{Key: "c", Kind: store.GuidePointsSales, GuideID: "zhao", BrandID: "camellia", StoreID: "ja", Month: month, Points: 55, EarnedAt: time.Now()},
		})
		must(err)
		got = say("wecom", "li", adapters.PartyGuide, "排行榜")
		wantIn("leaderboard", got, "【静安店】您排第 2 名（共 2 人），40 分", "1. 赵敏 55 分", "【山茶花】您排第 3 名（共 3 人），40 分", "1. 吴敏 90 分")
		wantIn("leaderboard in English", say("wecom", "li", adapters.PartyGuide, "my rank"), "[静安店] you are #2 of 2 with 40 points", "[山茶花] you are #3 of 3")
		got = say("dingtalk", "staff-wu", adapters.PartyGuide, "积分排行")
		wantIn("leaderboard, DingTalk", got, "**新天地店**：第 1 名 / 1 人，90 分", "**山茶花**：第 1 名 / 3 人，90 分")
		wantIn("stats show own points", say("wecom", "li", adapters.PartyGuide, "我的业绩"), "本月获得导购积分 40")
	})
}
