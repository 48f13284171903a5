package events

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func TestMoney(t *testing.T) {
	for in, want := range map[string]Money{"0": 0, "1": 100, "199.5": 19950, "199.05": 19905, "0.01": 1, "-3.2": -320} {
		if got, err := ParseMoney(in); err != nil || got != want {
			t.Errorf("ParseMoney(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1.234", "abc", "1e3", ".5", "1.2.3", "+1"} {
		if _, err := ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) accepted", in)
		}
	}
	if s := Money(19905).String(); s != "199.05" {
		t.Errorf("String = %s", s)
	}
}

func TestCheck(t *testing.T) {
	purchase := `{"member":{"phone":"13800138000"},"order_id":"SO-1","items":[{"sku":"CL-100","qty":2,"price":"129.00"}]}`
	tests := []struct {
		name, typ, data string
		want            []string
	}{
		{"a purchase", TypePurchaseCompleted, purchase, nil},
		{"a custom type needs only the member", "x.birthday", `{"member":{"crm_id":"C1"}}`, nil},
		{"unknown type, data unchecked", "purchase.exploded", `{}`,
			[]string{`type: "purchase.exploded" is not one of member.signed_up, member.updated, member.tagged, member.untagged, ` +
				`purchase.completed, purchase.refunded, store.visited, coupon.redeemed, live.joined, live.left, live.ordered, or a custom type x.<name>`}},
		{"a live join", TypeLiveJoined, `{"member":{"phone":"13800138000"},"live":"live-0110"}`, nil},
		{"a live join names its session", TypeLiveLeft, `{"member":{"phone":"13800138000"}}`, []string{"data.live: is required"}},
		{"a live order is a purchase of a session", TypeLiveOrdered, `{"member":{"phone":"13800138000"},"items":[]}`,
			[]string{"data.live: is required", "data.order_id: is required", "data.items: must not be empty"}},
		{"a coupon redemption needs no member", TypeCouponRedeemed, `{"code":"NEW-50-AB12CD","order_id":"SO-1","store":"sh-1"}`, nil},
		{"a coupon redemption names code and order", TypeCouponRedeemed, `{"store":"sh-1"}`,
			[]string{"data.code: is required", "data.order_id: is required"}},
		{"every fault with its path", TypePurchaseCompleted, `{"member":{},"items":[{"sku":"A","qty":0,"price":"1.001"}]}`,
			[]string{"data.member: want phone, crm_id or member_id", "data.order_id: is required", "data.items[0].qty: must be > 0",
				`data.items[0].price: want yuan with at most 2 decimals, got "1.001"`}},
		{"no data", TypeStoreVisited, ``, []string{"data: is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.typ, json.RawMessage(tc.data), nil)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Check = %q\nwant     %q", got, tc.want)
			}
		})
	}
	refuse := func(string) error { return errors.New("not a phone number") }
	if got := Check(TypePurchaseCompleted, json.RawMessage(purchase), refuse); !slices.Equal(got, []string{"data.member.phone: not a phone number"}) {
		t.Errorf("with a phone check: %q", got)
	}
	shared := `{"member":{"phone":"13800138000"},"order_id":"SO-1","share_token":"s1.x.y","items":[{"sku":"CL-100","qty":1,"price":1}]}`
	bad := func(string) error { return errors.New("does not verify") }
	if got := CheckWith(TypePurchaseCompleted, json.RawMessage(shared), Checks{ShareToken: bad}); !slices.Equal(got, []string{"data.share_token: does not verify"}) {
		t.Errorf("with a share token check: %q", got)
	}
	if got := CheckWith(TypePurchaseCompleted, json.RawMessage(shared), Checks{ShareToken: func(string) error { return nil }}); got != nil {
		t.Errorf("a token that verifies: %q", got)
	}
}

func TestOrderNamedByOrderID(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"SO-1","total":199}`:                    "SO-1",
		`{"order_id":"SO-2","total":199}`:              "SO-2",
		`{"id":"SO-3","order_id":"other","total":199}`: "SO-3",
	} {
		var o Order
		if err := json.Unmarshal([]byte(in), &o); err != nil || o.ID != want || o.Total != 199 {
			t.Errorf("%s: %+v, %v; want id %s", in, o, err, want)
		}
	}
}
