package storepage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/bots"
	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
)

// Paths the page is served at.
const (
	PagePath   = "/m/stores"
	StaticPath = "/m/static"
)

// CSP is the page's Content-Security-Policy: nothing inline, scripts and
// styles from the gateway only, images from the gateway or https (the
// channels' QR codes), forms back to the gateway, no framing.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https:; " +
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Limits of a page.
const (
	maxStores = 5
	maxGuides = 4
	// farKm is how far the page looks when no store is within the
	// assignment's distance, to show the nearest ones anyway.
	farKm = 3000
)

// Directory is what the page reads; *store.Store is one.
type Directory interface {
	Brand(ctx context.Context, id string) (*store.Brand, error)
	RetailStore(ctx context.Context, id, brand string) (*store.RetailStore, error)
	// StoreCards reads the listed stores with their guides and QR codes
	// at once (not a query per store and guide).
	StoreCards(ctx context.Context, ids []string, guidesPerStore int) (*store.StoreCards, error)
	// Assortment is what a store carries of a brand (its cloud store).
	Assortment(ctx context.Context, storeID, brand string) ([]store.AssortmentItem, error)
	Guide(ctx context.Context, id, brand string) (*store.Guide, error)
}

// Finder finds the active stores of a brand nearest a point, nearest
// first; *assign.Assigner is one.
type Finder interface {
	Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit
}

// Options configure the page.
type Options struct {
	Store  Directory
	Stores Finder
	// Codes opens member code links (the member code page); nil answers
	// every link 404.
	Codes MemberCodes
	// Shares verifies the share tokens of guides' links to a store's
	// cloud-store page; nil ignores them.
	Shares ShareVerifier
	// Now is the clock (open now or not). Default time.Now.
	Now func() time.Time
	// Log logs failures. Default: discarded.
	Log *slog.Logger
}

// Page serves the store page and its assets.
type Page struct {
	o        Options
	tmpl     *template.Template
	codeTmpl *template.Template
	shopTmpl *template.Template
	thumb    []byte
	version  map[string]string // asset → content hash, for cache busting
}

//go:embed assets
var assets embed.FS

// New returns the page.
func New(o Options) *Page {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	p := &Page{o: o, version: map[string]string{}}
	for _, name := range []string{"store.css", "locate.js"} {
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(b)
		p.version[name] = hex.EncodeToString(sum[:4])
	}
	funcs := template.FuncMap{
		"asset": func(name string) string { return StaticPath + "/" + name + "?v=" + p.version[name] },
	}
	parse := func(file string) *template.Template {
		return template.Must(template.New(file).Funcs(funcs).ParseFS(assets, "assets/"+file))
	}
	p.tmpl, p.codeTmpl, p.shopTmpl = parse("page.html"), parse("code.html"), parse("shop.html")
	p.thumb = cardThumb()
	return p
}

// Mount registers the page and its assets on r.
func (p *Page) Mount(r gin.IRoutes) {
	r.GET(PagePath, p.serve)
	r.GET(ShopPath, p.shop)
	r.GET(StaticPath+"/:file", p.static)
	p.mountCodes(r)
}

func (p *Page) static(c *gin.Context) {
	name := c.Param("file")
	ctype := map[string]string{".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}[path.Ext(name)]
	b, err := assets.ReadFile("assets/" + name)
	if err != nil || ctype == "" || p.version[name] == "" {
		c.Header("Content-Security-Policy", CSP)
		c.String(http.StatusNotFound, "not found")
		return
	}
	c.Header("Cache-Control", "public, max-age=86400")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Data(http.StatusOK, ctype, b)
}

// pageData is what page.html renders.
type pageData struct {
	T      text
	Brand  string
	Query  string // the brand id, kept in the forms
	City   string
	Lang   string // ?lang= given, kept in the forms
	Ask    bool   // no location yet: the script asks at once
	Head   string
	Notice string
	Error  string
	Stores []storeCard
	Cities []string
}

type storeCard struct {
	Name, Address, Hours, Distance string
	// Open is "open", "closed" or "" (hours not readable).
	Open   string
	MapURL string
	// Shop is the store's cloud-store page.
	Shop    string
	StoreQR string
	Guides  []guideCard
}

type guideCard struct {
	Name, Initial, QR string
}

func (p *Page) serve(c *gin.Context) {
	lang := language(c.Query("lang"), c.GetHeader("Accept-Language"))
	t := texts[lang]
	c.Header("Content-Security-Policy", CSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer") // the URL holds the member's location
	c.Header("Cache-Control", "private, no-store")
	c.Header("Vary", "Accept-Language")
	c.Header("Content-Language", t.Lang)
	d := &pageData{T: t, Query: c.Query("brand"), City: c.Query("city"), Lang: c.Query("lang")}
	for _, ct := range cities {
		if lang == "en" {
			d.Cities = append(d.Cities, ct.en)
		} else {
			d.Cities = append(d.Cities, ct.zh)
		}
	}
	ctx := c.Request.Context()
	if d.Query == "" {
		d.Error = t.BadBrand
		p.render(c, http.StatusBadRequest, d)
		return
	}
	b, err := p.o.Store.Brand(ctx, d.Query)
	if errors.Is(err, store.ErrNotFound) {
		d.Error = t.BadBrand
		p.render(c, http.StatusNotFound, d)
		return
	}
	if err != nil {
		p.fail(c, d, err)
		return
	}
	d.Brand = b.Name
	lat, lng, where, bad := p.origin(c, lang)
	switch {
	case bad != "":
		d.Error = fmt.Sprintf(t.BadInput, bad)
		p.render(c, http.StatusBadRequest, d)
		return
	case where == "":
		d.Ask = true
		p.render(c, http.StatusOK, d)
		return
	case where == "here":
		d.Head = t.NearYou
	default:
		d.Head = fmt.Sprintf(t.NearCity, where)
	}
	if p.o.Stores == nil {
		p.fail(c, d, errors.New("the store index is not loaded"))
		return
	}
	hits := p.o.Stores.Nearest(lat, lng, b.ID, 0, maxStores)
	if len(hits) == 0 {
		hits = p.o.Stores.Nearest(lat, lng, b.ID, farKm, maxStores)
		d.Notice = t.NoneNear
		if len(hits) > 0 {
			d.Notice = t.NearestFar
		}
	}
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	cards, err := p.o.Store.StoreCards(ctx, ids, maxGuides)
	if err != nil {
		p.fail(c, d, fmt.Errorf("reading the stores' cards: %w", err))
		return
	}
	for _, h := range hits {
		rs, ok := cards.Stores[h.ID]
		if !ok {
			continue // removed since the index was built
		}
		card := p.card(&rs, cards, h, t)
		card.Shop = shopURL(rs.ID, b.ID, d.Lang)
		d.Stores = append(d.Stores, *card)
	}
	p.render(c, http.StatusOK, d)
}

// origin reads where to search from: lat and lng ("here"), or a city (its
// name); "" when neither is given. bad says what is wrong with them.
func (p *Page) origin(c *gin.Context, lang string) (lat, lng float64, where, bad string) {
	latS, lngS, cityS := c.Query("lat"), c.Query("lng"), c.Query("city")
	if latS != "" || lngS != "" {
		var err1, err2 error
		lat, err1 = strconv.ParseFloat(latS, 64)
		lng, err2 = strconv.ParseFloat(lngS, 64)
		if err1 != nil || err2 != nil || math.IsInf(lat, 0) || math.IsInf(lng, 0) {
			return 0, 0, "", "lat=" + trim(latS) + ", lng=" + trim(lngS)
		}
		if err := store.ValidateCoordinates(lat, lng); err != nil {
			return 0, 0, "", "lat=" + trim(latS) + ", lng=" + trim(lngS)
		}
		return lat, lng, "here", ""
	}
	if cityS != "" {
		ct, ok := findCity(cityS)
		if !ok {
			return 0, 0, "", trim(cityS)
		}
		if lang == "en" {
			return ct.lat, ct.lng, ct.en, ""
		}
		return ct.lat, ct.lng, ct.zh, ""
	}
	return 0, 0, "", ""
}

// trim cuts what a member typed to a length worth echoing.
func trim(s string) string {
	if utf8.RuneCountInString(s) > 20 {
		return string([]rune(s)[:20]) + "…"
	}
	return s
}

// card is one store's card: its details, guides and QR codes, from
// the page's cards.
func (p *Page) card(rs *store.RetailStore, cards *store.StoreCards, h geo.Hit, t text) *storeCard {
	card := &storeCard{Name: rs.Name, Address: rs.Address, Hours: rs.OpeningHours, Distance: distance(h.DistM, t),
		MapURL: "https://uri.amap.com/marker?" + url.Values{"position": {strconv.FormatFloat(rs.Lng, 'f', 6, 64) + "," + strconv.FormatFloat(rs.Lat, 'f', 6, 64)},
			"name": {rs.Name}, "coordinate": {"wgs84"}, "callnative": {"1"}}.Encode()}
	if card.Hours == "" {
		card.Hours = t.HoursUnknown
	} else if hrs := bots.ParseHours(rs.OpeningHours); !hrs.AlwaysOpen() {
		loc, err := time.LoadLocation(rs.TimeZone)
		if err != nil || rs.TimeZone == "" {
			loc, _ = time.LoadLocation(store.DefaultTimeZone)
		}
		now := p.o.Now().In(loc)
		card.Open = "closed"
		if hrs.Next(now).Equal(now) {
			card.Open = "open"
		}
	}
	card.StoreQR = newestQR(cards.StoreWays[rs.ID], p.o.Now())
	for _, g := range cards.Guides[rs.ID] {
		initial, _ := utf8.DecodeRuneInString(g.Name)
		card.Guides = append(card.Guides, guideCard{Name: g.Name, Initial: string(initial), QR: newestQR(cards.GuideWays[g.ID], p.o.Now())})
	}
	return card
}

// newestQR is the newest QR code (an http(s) image) of contact ways
// listed oldest first: a permanent one, else a temporary one that still
// works at now; "" when none.
func newestQR(cws []store.ContactWay, now time.Time) string {
	for _, permanent := range []bool{true, false} {
		for i := len(cws) - 1; i >= 0; i-- {
			cw := cws[i]
			if (cw.ExpiresAt == nil) != permanent || (cw.ExpiresAt != nil && !now.Before(*cw.ExpiresAt)) {
				continue
			}
			if u, err := url.Parse(cw.QRCode); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
				return cw.QRCode
			}
		}
	}
	return ""
}

func distance(m float64, t text) string {
	if m < 1000 {
		return fmt.Sprintf(t.M, int(math.Round(m/10))*10)
	}
	return fmt.Sprintf(t.Km, m/1000)
}

func (p *Page) fail(c *gin.Context, d *pageData, err error) {
	p.o.Log.ErrorContext(c.Request.Context(), "store page failed", slog.Any("error", err))
	d.Error, d.Stores, d.Ask = "服务暂时不可用 / Service unavailable", nil, false
	p.render(c, http.StatusServiceUnavailable, d)
}

func (p *Page) render(c *gin.Context, status int, d *pageData) {
	var buf bytes.Buffer
	if err := p.tmpl.Execute(&buf, d); err != nil {
		p.o.Log.ErrorContext(c.Request.Context(), "rendering the store page", slog.Any("error", err))
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}
