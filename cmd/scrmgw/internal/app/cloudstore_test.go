package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/store"
)

// TestJourneyCloudStoreShareLink: store sh-1 carries two of camellia's
// products, one at its own price; a collection store lists each brand's
// products it carries. 李娜 makes a share link for a product her store
// carries (not for one it does not); a member never bound to her buys
// online through it, and the shop's signed purchase.completed with the
// link's token credits the order to 李娜 and sh-1 (attribution share,
// her commission). A token altered in any way is refused at the door
// with data.share_token named and nothing recorded; the same member's
// order without a token credits nobody. In the WeCom app, 李娜 asks the
// guide bot for a link ("分享 CL-100": the product's shop page with her
// token) and an order through it is hers too; a product her store does
// not carry gets no link.
func TestJourneyCloudStoreShareLink(t *testing.T) {
	j := startJourney(t, journeyChannels{wecom: true}, time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai))
	ctx := context.Background()

	// The assortment: the brand's catalogue, the store's prices.
	code, body := request(t, "PUT", j.s.base+"/api/v1/stores/sh-1/products", j.tok,
		`{"brand":"camellia","items":[{"sku":"CL-100","price":119},{"sku":"TN-200","in_stock":false}]}`)
	if code != 200 {
		t.Fatalf("PUT assortment: %d %s", code, body)
	}
	var as struct{ Items []store.AssortmentItem }
	json.Unmarshal([]byte(body), &as)
	want := []store.AssortmentItem{
		{BrandID: "camellia", SKU: "CL-100", Name: "氨基酸洁面乳", PriceCents: 11900, BrandPriceCents: 12900, OwnPrice: true, InStock: true},
		{BrandID: "camellia", SKU: "TN-200", Name: "保湿爽肤水", PriceCents: 18900, BrandPriceCents: 18900},
	}
	if fmt.Sprint(as.Items) != fmt.Sprint(want) {
		t.Errorf("assortment = %+v\nwant %+v", as.Items, want)
	}
	code, body = request(t, "PUT", j.s.base+"/api/v1/stores/sh-1/products", j.tok,
		`{"brand":"camellia","items":[{"sku":"CL-100"},{"sku":"NOPE-1"},{"sku":"TN-200","price":-1}]}`)
	if code != 400 || !strings.Contains(body, `"field":"items[1].sku"`) || !strings.Contains(body, `"field":"items[2].price"`) {
		t.Errorf("PUT with an unknown SKU and a negative price: %d %s", code, body)
	}
	if got, _ := j.s.app.Store.Assortment(ctx, "sh-1", "camellia"); len(got) != 2 || got[0].PriceCents != 11900 {
		t.Errorf("a refused assortment changed the store's: %+v", got)
	}

	// A collection store carrying two brands lists both.
	for _, req := range []struct{ path, body string }{
		{"/api/v1/brands", `{"id":"rose","name":"玫瑰"}`},
		{"/api/v1/stores", `{"id":"mix-1","name":"美妆集合店","brands":["camellia","rose"],"lat":31.2,"lng":121.4,"time_zone":"Asia/Shanghai"}`},
		{"/api/v1/products/bulk", `{"items":[{"brand":"rose","sku":"RS-1","name":"玫瑰精华","price":299}]}`},
	} {
		if code, body := request(t, "POST", j.s.base+req.path, j.tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	for brand, items := range map[string]string{"camellia": `[{"sku":"CL-100"}]`, "rose": `[{"sku":"RS-1","price":279}]`} {
		if code, body := request(t, "PUT", j.s.base+"/api/v1/stores/mix-1/products", j.tok, `{"brand":"`+brand+`","items":`+items+`}`); code != 200 {
			t.Fatalf("PUT mix-1 %s: %d %s", brand, code, body)
		}
	}
	_, body = request(t, "GET", j.s.base+"/api/v1/stores/mix-1/products", j.tok, "")
	if !strings.Contains(body, `"brand":"camellia","sku":"CL-100"`) || !strings.Contains(body, `"brand":"rose","sku":"RS-1"`) ||
		!strings.Contains(body, `"price_cents":27900`) {
		t.Errorf("the collection store's products: %s", body)
	}

	// 李娜's share link: a product her store carries, not one it does not.
	if code, body := request(t, "POST", j.s.base+"/api/v1/guides/g-li/share-links", j.tok,
		`{"brand":"camellia","url":"https://shop.example.com/p/BG-1","sku":"BG-1"}`); code != 400 || !strings.Contains(body, `"field":"sku"`) {
		t.Errorf("a link for a product the store does not carry: %d %s", code, body)
	}
	code, body = request(t, "POST", j.s.base+"/api/v1/guides/g-li/share-links", j.tok,
		`{"brand":"camellia","url":"https://shop.example.com/p/CL-100?from=guide","sku":"CL-100"}`)
	var link struct {
		URL, Token string
		GuideID    string `json:"guide_id"`
		StoreID    string `json:"store_id"`
	}
	json.Unmarshal([]byte(body), &link)
	u, _ := url.Parse(link.URL)
	if code != 201 || link.GuideID != "g-li" || link.StoreID != "sh-1" || u.Query().Get("share_token") != link.Token || u.Query().Get("from") != "guide" ||
		u.Host != "shop.example.com" {
		t.Fatalf("share link: %d %s", code, body)
	}

	// The shop's orders: tampered tokens refused at the door.
	order := func(id, orderNo, token string) string {
		tok := ""
		if token != "" {
			tok = fmt.Sprintf(`,"share_token":%q`, token)
		}
		return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/shop","type":"purchase.completed","brand":"camellia",
		  "data":{"member":{"phone":"13700137000"},"order_id":%q,"channel":"online","items":[{"sku":"CL-100","qty":1,"price":119}]%s}}`,
			id, orderNo, tok)
	}
	payload, mac, _ := strings.Cut(strings.TrimPrefix(link.Token, "s1."), ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"payload altered": "s1." + flip(payload) + "." + mac,
		"MAC altered":     "s1." + payload + "." + flip(mac),
		"made up":         "s1.eyJiIjoiY2FtZWxsaWEiLCJnIjoiZy1saSIsInMiOiJzaC0xIiwieCI6OTk5OTk5OTk5OX0.AAAAAAAAAAAAAAAAAAAAAA",
	} {
		code, body := postSigned(t, j.s.base, journeySecret, "msg-bad-"+name, "application/cloudevents+json", order("bad-"+name, "WEB-BAD", bad))
		if code != 400 || !strings.Contains(body, `"field":"data.share_token"`) {
			t.Errorf("%s: %d %s, want 400 naming data.share_token", name, code, body)
		}
	}
	j.event("web-1", order("web-1", "WEB-1", link.Token))
	j.event("web-2", order("web-2", "WEB-2", ""))
	waitFor(t, "the two orders", func() bool {
		_, e1 := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-1")
		_, e2 := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-2")
		return e1 == nil && e2 == nil
	})
	if _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-BAD"); err == nil {
		t.Error("an order with a tampered token was recorded")
	}
	o, _ := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-1")
	if o.Attribution != commerce.AttributionShare || o.GuideID == nil || *o.GuideID != "g-li" || o.StoreID == nil || *o.StoreID != "sh-1" {
		t.Errorf("order through the share link = %+v, want credited to g-li at sh-1 (share)", o)
	}
	lines, _ := j.s.app.Store.CommissionLines(ctx, o.ID)
	var guide int64
	for _, l := range lines {
		if l.Party == store.PartyGuide && l.PartyID == "g-li" {
			guide += l.AmountCents
		}
	}
	if guide <= 0 {
		t.Errorf("no commission for g-li: %+v", lines)
	}
	if o2, _ := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-2"); o2.GuideID != nil || o2.Attribution != "none" {
		t.Errorf("order without a token = %+v, want credited to nobody", o2)
	}

	// The guide bot: the product's page on the shop (the catalogue's url).
	if code, body := request(t, "POST", j.s.base+"/api/v1/products/bulk", j.tok,
		`{"items":[{"brand":"camellia","sku":"CL-100","name":"氨基酸洁面乳","price":129,"replenish_days":30,"url":"https://shop.example.com/p/CL-100"}]}`); code/100 != 2 {
		t.Fatalf("products with a url: %d %s", code, body)
	}
	guideSay(t, j.s, j.wecom, "分享 BG-1")
	if m := waitApp(t, j.wecom, 1, "您的门店没有在售商品 BG-1"); m.MsgType != "text" || len(m.ToUser) != 1 || m.ToUser[0] != "li" {
		t.Errorf("the answer for a product not carried = %+v", m)
	}
	guideSay(t, j.s, j.wecom, "分享 CL-100")
	// Links expire 30 days from the wall clock (orders carry real times).
	m := waitApp(t, j.wecom, 2, "氨基酸洁面乳（¥119）的分享链接，转发给会员，"+cnDate(time.Now().Add(30*24*time.Hour))+
		"前通过它下的单都记在您名下：\nhttps://shop.example.com/p/CL-100?share_token=s1.")
	botURL, _ := url.Parse(m.Content[strings.LastIndex(m.Content, "\n")+1:])
	j.event("web-3", order("web-3", "WEB-3", botURL.Query().Get("share_token")))
	waitFor(t, "the order through the bot's link", func() bool { _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-3"); return err == nil })
	if o3, _ := j.s.app.Store.OrderByNo(ctx, journeyBrand, "WEB-3"); o3.Attribution != commerce.AttributionShare || o3.GuideID == nil || *o3.GuideID != "g-li" {
		t.Errorf("order through the bot's link = %+v, want credited to g-li (share)", o3)
	}
}
