package app

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/gateway/commerce"
	"github.com/scrmgw/scrmgw/gateway/sharelink"
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

// TestJourneyStorePageCloudStore: the store page members open (门店H5)
// opens a store's cloud store: the store's products of the brand with
// the store's price (the brand's struck through when the store's is
// lower), in stock or not, each linking to its page on the shop. 李娜
// makes a share link to her store's page; a member who opens it sees her
// recommendation and every product link carries her token, so the shop's
// order placed from it credits her and sh-1 (attribution share). The page
// without a token, or with one altered or of another store, links the
// products plainly and names no guide; a store that does not carry the
// brand is a 404.
func TestJourneyStorePageCloudStore(t *testing.T) {
	j := startJourney(t, journeyChannels{wecom: true}, time.Date(2027, 1, 5, 11, 0, 0, 0, shanghai))
	ctx := context.Background()
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/api/v1/products/bulk", `{"items":[{"brand":"camellia","sku":"CL-100","name":"氨基酸洁面乳","price":129,"category":"洁面","url":"https://shop.example.com/p/CL-100"},
		  {"brand":"camellia","sku":"TN-200","name":"保湿爽肤水","price":189,"url":"https://shop.example.com/p/TN-200?c=1"}]}`},
		{"PUT", "/api/v1/stores/sh-1/products", `{"brand":"camellia","items":[{"sku":"CL-100","price":119},{"sku":"TN-200","in_stock":false},{"sku":"BG-1"}]}`},
		{"POST", "/api/v1/stores", `{"id":"sh-2","name":"徐汇店","brands":["camellia"],"lat":31.19,"lng":121.43,"time_zone":"Asia/Shanghai"}`},
		{"POST", "/api/v1/brands", `{"id":"rose","name":"玫瑰"}`},
	} {
		if code, body := request(t, req.method, j.s.base+req.path, j.tok, req.body); code/100 != 2 {
			t.Fatalf("seeding %s: %d %s", req.path, code, body)
		}
	}
	page := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", j.s.base+path, nil)
		req.Header.Set("Accept-Language", "zh-CN,zh;q=0.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get("Content-Security-Policy") == "" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, resp.Header)
		}
		return resp.StatusCode, string(b)
	}
	// From the store list: each store links its cloud store.
	if code, body := page("/m/stores?brand=camellia&lat=31.2300&lng=121.4700"); code != 200 ||
		!strings.Contains(body, `href="/m/stores/sh-1/products?brand=camellia">逛云店</a>`) {
		t.Fatalf("the store list links no cloud store: %d %s", code, body)
	}
	code, plain := page("/m/stores/sh-1/products?brand=camellia")
	if code != 200 {
		t.Fatalf("the cloud store: %d %s", code, plain)
	}
	for _, want := range [][]string{
		{"<h1>静安店</h1>", "氨基酸洁面乳", "¥119 <s>¥129</s>", "洁面", "有货", `href="https://shop.example.com/p/CL-100"`, "去购买"},
		{"保湿爽肤水", "¥189", "暂时缺货", `href="https://shop.example.com/p/TN-200?c=1"`},
		{"帆布包", "¥59", "有货", "到店购买"},
	} {
		if !inOrderText(plain, want...) {
			t.Errorf("the cloud store lacks %q in order:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "share_token") || strings.Contains(plain, "为您推荐") {
		t.Errorf("the page without a token credits someone:\n%s", plain)
	}

	// 李娜's share link to her store's page.
	shopURL := j.s.base + "/m/stores/sh-1/products?brand=camellia"
	code, body := request(t, "POST", j.s.base+"/api/v1/guides/g-li/share-links", j.tok, `{"brand":"camellia","url":"`+shopURL+`"}`)
	var link struct{ URL, Token string }
	json.Unmarshal([]byte(body), &link)
	if code != 201 || !strings.HasPrefix(link.URL, shopURL+"&share_token=") {
		t.Fatalf("share link to the store page: %d %s", code, body)
	}
	code, shared := page(strings.TrimPrefix(link.URL, j.s.base))
	if code != 200 || !strings.Contains(shared, "导购李娜为您推荐") {
		t.Fatalf("the shared page: %d %s", code, shared)
	}
	q := url.Values{"share_token": {link.Token}}.Encode()
	for _, want := range []string{`href="https://shop.example.com/p/CL-100?` + q + `"`, `href="https://shop.example.com/p/TN-200?c=1&amp;` + q + `"`} {
		if !strings.Contains(shared, want) {
			t.Errorf("the shared page lacks the product link %s:\n%s", want, shared)
		}
	}

	// The member buys CL-100 from the link on the page: the shop passes
	// the token on with the order.
	re := regexp.MustCompile(`href="(https://shop\.example\.com/p/CL-100\?[^"]+)"`)
	m := re.FindStringSubmatch(shared)
	if m == nil {
		t.Fatalf("no CL-100 link on the shared page")
	}
	bought, _ := url.Parse(html.UnescapeString(m[1]))
	j.event("h5-1", fmt.Sprintf(`{"specversion":"1.0","id":"h5-1","source":"/shop","type":"purchase.completed","brand":"camellia",
	  "data":{"member":{"phone":"13700137000"},"order_id":"H5-1","channel":"online","items":[{"sku":"CL-100","qty":1,"price":119}],"share_token":%q}}`,
		bought.Query().Get("share_token")))
	waitFor(t, "the order from the store page", func() bool { _, err := j.s.app.Store.OrderByNo(ctx, journeyBrand, "H5-1"); return err == nil })
	o, _ := j.s.app.Store.OrderByNo(ctx, journeyBrand, "H5-1")
	if o.Attribution != commerce.AttributionShare || o.GuideID == nil || *o.GuideID != "g-li" || o.StoreID == nil || *o.StoreID != "sh-1" {
		t.Errorf("order from the store page = %+v, want credited to g-li at sh-1 (share)", o)
	}

	// Tokens that credit nobody from this page, and pages that are none.
	payload, mac, _ := strings.Cut(strings.TrimPrefix(link.Token, "s1."), ".")
	otherStore, _ := j.s.app.shares.Make(sharelink.Link{Brand: "camellia", Guide: "g-li", Store: "sh-2", ExpiresAt: time.Now().Add(time.Hour).Unix()})
	for name, tok := range map[string]string{"altered": "s1." + payload + "." + strings.Repeat("A", len(mac)), "another store's": otherStore} {
		code, body := page("/m/stores/sh-1/products?brand=camellia&share_token=" + url.QueryEscape(tok))
		if code != 200 || strings.Contains(body, "share_token") || strings.Contains(body, "为您推荐") || !strings.Contains(body, "氨基酸洁面乳") {
			t.Errorf("%s token: %d, want the plain page:\n%s", name, code, body)
		}
	}
	if code, body := page("/m/stores/sh-2/products?brand=camellia"); code != 200 || !strings.Contains(body, "这家门店暂时没有上架商品") {
		t.Errorf("a store without products: %d %s", code, body)
	}
	for path, want := range map[string]string{"/m/stores/sh-1/products?brand=rose": "没有找到这家门店", "/m/stores/nope/products?brand=camellia": "没有找到这家门店",
		"/m/stores/sh-1/products?brand=nope": "没有找到这个品牌", "/m/stores/sh-1/products": "没有找到这个品牌"} {
		if code, body := page(path); code != 404 || !strings.Contains(body, want) || strings.Contains(body, "氨基酸洁面乳") {
			t.Errorf("%s: %d, want 404 %s:\n%s", path, code, want, body)
		}
	}
}

// inOrderText reports whether each of want appears in body after the
// one before it.
func inOrderText(body string, want ...string) bool {
	at := 0
	for _, w := range want {
		i := strings.Index(body[at:], w)
		if i < 0 {
			return false
		}
		at += i + len(w)
	}
	return true
}
