package bots

import (
	"context"
	"strings"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/storetest"
)

// TestBotsAnswerWithTheirBrandsData: one person is a member of camellia
// (陈女士, phone given, gold, guide 李娜) and of yun (Chen Yun, no phone,
// platinum, guide 周洁). Each brand's member bot and guides answer with
// that brand's data only.
func TestBotsAnswerWithTheirBrandsData(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		bot := setup(t, s)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateBrand(ctx, &store.Brand{ID: "yun", Name: "云裳"}))
		must(s.CreateRetailStore(ctx, &store.RetailStore{ID: "yun1", Name: "云裳徐汇店", Lat: 31.19, Lng: 121.43, BrandIDs: []string{"yun"}, Active: true}))
		must(s.CreateGuide(ctx, &store.Guide{ID: "zhou", StoreID: "yun1", Name: "周洁", Identities: []store.GuideIdentity{{Channel: "wecom", ExternalID: "zhou"}}, Active: true}))
		m, _, err := s.EnsureMember(ctx, store.NewMember{Name: "Chen Yun", BrandID: "yun", Identities: []store.Identity{{Channel: "wecom", ExternalID: "wmChen"}}})
		must(err)
		must(s.SetMembership(ctx, m.ID, "camellia", "gold", ptr(int64(1280))))
		must(s.SetMembership(ctx, m.ID, "yun", "platinum", ptr(int64(99999))))
		_, _, err = s.Bind(ctx, &store.Binding{MemberID: m.ID, BrandID: "yun", GuideID: "zhou", StoreID: "yun1", Reason: "manual"})
		must(err)
		for _, tc := range []struct {
			name        string
			from        adapters.Party
			sender      string
			brand, text string
			want, never []string
		}{
			{"camellia points", adapters.PartyMember, "wmChen", "camellia", "我的积分", []string{"1280", "gold"}, []string{"99999", "platinum"}},
			{"yun points", adapters.PartyMember, "wmChen", "yun", "我的积分", []string{"99999", "platinum"}, []string{"1280", "gold"}},
			{"camellia guide", adapters.PartyMember, "wmChen", "camellia", "我的导购", []string{"李娜", "静安店"}, []string{"周洁", "云裳徐汇店"}},
			{"yun guide", adapters.PartyMember, "wmChen", "yun", "我的导购", []string{"周洁", "云裳徐汇店"}, []string{"李娜", "静安店"}},
			{"camellia's guide's members", adapters.PartyGuide, "li", "camellia", "我的会员", []string{"陈女士", "8000"}, []string{"Chen Yun"}},
			{"yun's guide's members", adapters.PartyGuide, "zhou", "yun", "我的会员", []string{"Chen Yun"}, []string{"陈女士", "8000"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, err := bot.Handle(ctx, &Message{Channel: "wecom", From: tc.from, SenderID: tc.sender, Brand: tc.brand, Text: tc.text})
				if err != nil || len(r) != 1 {
					t.Fatalf("%v, %d replies", err, len(r))
				}
				for _, w := range tc.want {
					if !strings.Contains(r[0].Text, w) {
						t.Errorf("reply %q lacks %q", r[0].Text, w)
					}
				}
				for _, n := range tc.never {
					if strings.Contains(r[0].Text, n) {
						t.Errorf("reply %q shows the other brand's %q", r[0].Text, n)
					}
				}
			})
		}
	})
}
