package console

import (
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/scrmgw/scrmgw/store"
	"github.com/scrmgw/scrmgw/store/geo"
)

// Nearest finds the active stores of a brand nearest a point, as GET
// /api/v1/stores/nearest does; *assign.Assigner implements it.
type Nearest interface {
	Nearest(lat, lng float64, brand string, maxKm float64, n int) []geo.Hit
}

// probeStores is how many stores the probe lists, and probeKm how far it
// looks: the whole country.
const (
	probeStores = 10
	probeKm     = 5000
)

type storeRow struct {
	store.RetailStore
	Guides, Capacity, Bound int
	// X and Y are the store's point on the map.
	X, Y float64
}

// LoadPercent is the store's members bound against its guides' capacity.
func (s storeRow) LoadPercent() int {
	if s.Capacity <= 0 {
		return 0
	}
	return min(100, s.Bound*100/s.Capacity)
}

// MeterWidth is the load meter's filled width (of 90).
func (s storeRow) MeterWidth() int { return s.LoadPercent() * 90 / 100 }

// Full says the store's guides are at capacity.
func (s storeRow) Full() bool { return s.Capacity > 0 && s.Bound >= s.Capacity }

type probeHit struct {
	Rank     int
	Store    storeRow
	Distance string
}

type storesData struct {
	Brand  string
	Brands []string
	Admin  bool
	Rows   []storeRow
	Map    template.HTML
	// The probe: its point as typed, and the stores nearest it.
	Lat, Lng   string
	Probed     bool
	Hits       []probeHit
	ProbeError string
	// CanProbe: the nearest-store index is loaded.
	CanProbe bool
	Bound    int
	Capacity int
	Guides   int
	// Next is the link to the stores after this page's, First to the
	// first page (when this is not it).
	Next, First string
}

// storesPageSize is how many stores the stores page shows (and draws):
// 200 keeps the page (its rows and its map) inside the console's 200 ms.
const storesPageSize = 200

// storesPage shows a brand's stores on a map (an equirectangular
// projection fitted to their bounding box, drawn on the server, offline),
// each store's guides, capacity and load, and the nearest-store probe:
// GET /console/stores?brand=&lat=&lng=.
func (c *Console) storesPage(ctx *gin.Context) {
	brand, brands, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	lang := language(ctx.Request)
	d := &storesData{Brand: brand, Brands: brands, Admin: p.Admin(), CanProbe: c.o.Nearest != nil, Lat: ctx.Query("lat"), Lng: ctx.Query("lng")}
	if brand == "" {
		c.render(ctx, http.StatusOK, "stores", "stores.title", "/stores", d)
		return
	}
	// A page of the brand's stores in id order, with the load of their
	// active guides summed in SQL: a brand may have 200,000 stores and
	// 600,000 guides.
	after := ctx.Query("after")
	stores, err := c.o.Store.RetailStores(rctx, brand, store.Page{Limit: storesPageSize, After: after})
	if err != nil {
		c.fail(ctx, err)
		return
	}
	more := false
	if len(stores) == storesPageSize {
		next, err := c.o.Store.StoreOptions(rctx, brand, stores[len(stores)-1].ID, 1)
		if err != nil {
			c.fail(ctx, err)
			return
		}
		more = len(next) > 0
	}
	link := func(after string) string {
		q := url.Values{}
		if d.Admin {
			q.Set("brand", brand)
		}
		if after != "" {
			q.Set("after", after)
		}
		if len(q) == 0 {
			return Path + "/stores"
		}
		return Path + "/stores?" + q.Encode()
	}
	if more {
		d.Next = link(stores[len(stores)-1].ID)
	}
	if after != "" {
		d.First = link("")
	}
	byStore := map[string]*storeRow{}
	for _, s := range stores {
		d.Rows = append(d.Rows, storeRow{RetailStore: s})
	}
	ids := make([]string, len(d.Rows))
	for i := range d.Rows {
		byStore[d.Rows[i].ID] = &d.Rows[i]
		ids[i] = d.Rows[i].ID
	}
	loads, err := c.o.Store.StoreLoads(rctx, ids)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	for i := range d.Rows {
		l := loads[d.Rows[i].ID]
		r := &d.Rows[i]
		r.Guides, r.Capacity, r.Bound = l.Guides, l.Capacity, l.Bound
		d.Guides += l.Guides
		d.Capacity += l.Capacity
		d.Bound += l.Bound
	}
	var probe *[2]float64
	if d.Lat != "" || d.Lng != "" {
		lat, err1 := strconv.ParseFloat(strings.TrimSpace(d.Lat), 64)
		lng, err2 := strconv.ParseFloat(strings.TrimSpace(d.Lng), 64)
		switch {
		case err1 != nil || err2 != nil:
			d.ProbeError = translate(lang, "stores.bad_point")
		case store.ValidateCoordinates(lat, lng) != nil:
			d.ProbeError = translate(lang, "stores.bad_point")
		case c.o.Nearest == nil:
			d.ProbeError = translate(lang, "stores.no_index")
		default:
			probe = &[2]float64{lat, lng}
			d.Probed = true
			hits := c.o.Nearest.Nearest(lat, lng, brand, probeKm, probeStores)
			// Stores nearest the point that are not on this page: their
			// rows and loads.
			var others []string
			for _, h := range hits {
				if byStore[h.ID] == nil {
					others = append(others, h.ID)
				}
			}
			extra := map[string]*storeRow{}
			if len(others) > 0 {
				loads, err := c.o.Store.StoreLoads(rctx, others)
				if err != nil {
					c.fail(ctx, err)
					return
				}
				for _, id := range others {
					rs, err := c.o.Store.RetailStore(rctx, id, brand)
					if errors.Is(err, store.ErrNotFound) {
						continue // deleted since, or no longer the brand's
					}
					if err != nil {
						c.fail(ctx, err)
						return
					}
					l := loads[id]
					extra[id] = &storeRow{RetailStore: *rs, Guides: l.Guides, Capacity: l.Capacity, Bound: l.Bound}
				}
			}
			for i, h := range hits {
				r := byStore[h.ID]
				if r == nil {
					r = extra[h.ID]
				}
				if r == nil {
					continue
				}
				d.Hits = append(d.Hits, probeHit{Rank: i + 1, Store: *r, Distance: distance(h.DistM)})
			}
		}
	}
	status := http.StatusOK
	if d.ProbeError != "" {
		status = http.StatusBadRequest
	}
	d.Map = storeMap(d, probe, lang)
	c.render(ctx, status, "stores", "stores.title", "/stores", d)
}

// distance formats metres as m or km.
func distance(m float64) string {
	if m < 1000 {
		return fmt.Sprintf("%.0f m", m)
	}
	if m < 100_000 {
		return fmt.Sprintf("%.1f km", m/1000)
	}
	return fmt.Sprintf("%.0f km", m/1000)
}

// Map geometry, in SVG user units.
const (
	mapW    = 860
	mapMaxH = 480
	mapPad  = 36
)

// storeMap draws the stores as points on an equirectangular projection
// fitted to their bounding box (longitudes scaled by the cosine of the
// middle latitude, so distances look right), with a graticule; each point
// links to the probe at that store, and a probed point is drawn with lines
// to its nearest stores. map.js turns a click elsewhere into a probe.
func storeMap(d *storesData, probe *[2]float64, lang string) template.HTML {
	if len(d.Rows) == 0 {
		return ""
	}
	minLat, maxLat, minLng, maxLng := 90.0, -90.0, 180.0, -180.0
	extend := func(lat, lng float64) {
		minLat, maxLat = math.Min(minLat, lat), math.Max(maxLat, lat)
		minLng, maxLng = math.Min(minLng, lng), math.Max(maxLng, lng)
	}
	for _, r := range d.Rows {
		extend(r.Lat, r.Lng)
	}
	if probe != nil {
		extend(probe[0], probe[1])
		for _, h := range d.Hits {
			extend(h.Store.Lat, h.Store.Lng) // a hit may be off this page
		}
	}
	// At least ~2 km across; a margin around the points.
	if maxLat-minLat < 0.02 {
		mid := (maxLat + minLat) / 2
		minLat, maxLat = mid-0.01, mid+0.01
	}
	if maxLng-minLng < 0.02 {
		mid := (maxLng + minLng) / 2
		minLng, maxLng = mid-0.01, mid+0.01
	}
	cos := math.Cos((minLat + maxLat) / 2 * math.Pi / 180)
	spanX, spanY := (maxLng-minLng)*cos, maxLat-minLat
	scale := math.Min(float64(mapW-2*mapPad)/spanX, float64(mapMaxH-2*mapPad)/spanY)
	h := spanY*scale + 2*mapPad
	offX := (float64(mapW) - spanX*scale) / 2
	x := func(lng float64) float64 { return offX + (lng-minLng)*cos*scale }
	y := func(lat float64) float64 { return mapPad + (maxLat-lat)*scale }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="map" id="map-svg" viewBox="0 0 %d %.0f" width="100%%" role="group" aria-labelledby="map-title map-desc"`+
		` data-lng0="%.6f" data-lat0="%.6f" data-kx="%.6f" data-ky="%.6f" data-ox="%.3f" data-oy="%d">`,
		mapW, h, minLng, maxLat, cos*scale, scale, offX, mapPad)
	fmt.Fprintf(&b, `<title id="map-title">%s</title><desc id="map-desc">%s</desc>`,
		esc(translate(lang, "stores.map_title", d.Brand)), esc(translate(lang, "stores.map_desc")))
	fmt.Fprintf(&b, `<rect class="map-bg" x="0" y="0" width="%d" height="%.0f"/>`, mapW, h)
	// The graticule: a round step giving 3 to 8 lines.
	step := niceStep(math.Max(maxLat-minLat, maxLng-minLng) / 5)
	for v := math.Ceil((minLng-1)/step) * step; v <= maxLng+1; v += step {
		if px := x(v); px >= 0 && px <= mapW {
			fmt.Fprintf(&b, `<line class="map-grid" x1="%.1f" y1="0" x2="%.1f" y2="%.0f"/><text class="map-grid-label" x="%.1f" y="%.0f">%s°E</text>`, px, px, h, px+3, h-6, trimFloat(v))
		}
	}
	for v := math.Ceil((minLat-1)/step) * step; v <= maxLat+1; v += step {
		if py := y(v); py >= 0 && py <= h {
			fmt.Fprintf(&b, `<line class="map-grid" x1="0" y1="%.1f" x2="%d" y2="%.1f"/><text class="map-grid-label" x="4" y="%.1f">%s°N</text>`, py, mapW, py, py-4, trimFloat(v))
		}
	}
	for i := range d.Rows {
		d.Rows[i].X, d.Rows[i].Y = x(d.Rows[i].Lng), y(d.Rows[i].Lat)
	}
	if probe != nil {
		px, py := x(probe[1]), y(probe[0])
		for i, hit := range d.Hits {
			if i == 3 {
				break
			}
			fmt.Fprintf(&b, `<line class="map-ray" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`, px, py, x(hit.Store.Lng), y(hit.Store.Lat))
		}
	}
	for _, r := range d.Rows {
		q := url.Values{"lat": {trimFloat(r.Lat)}, "lng": {trimFloat(r.Lng)}}
		if d.Admin {
			q.Set("brand", d.Brand)
		}
		class := "map-store"
		if !r.Active {
			class += " map-store-inactive"
		}
		fmt.Fprintf(&b, `<a class="map-link" href="%s?%s#probe" aria-label="%s"><circle class="%s" cx="%.1f" cy="%.1f" r="7"/><text class="map-label" x="%.1f" y="%.1f">%s</text></a>`,
			Path+"/stores", esc(q.Encode()), esc(translate(lang, "stores.probe_at", r.Name)), class, r.X, r.Y, r.X+10, r.Y+4, esc(truncateText(r.Name, 28)))
	}
	if probe != nil {
		fmt.Fprintf(&b, `<g class="map-probe"><circle class="map-probe-ring" cx="%.1f" cy="%.1f" r="11"/><circle class="map-probe-dot" cx="%.1f" cy="%.1f" r="4"/></g>`,
			x(probe[1]), y(probe[0]), x(probe[1]), y(probe[0]))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceStep rounds a graticule step to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string { return strconv.FormatFloat(math.Round(v*1e5)/1e5, 'f', -1, 64) }

// qrCard is one contact way's code, of the store or one of its guides.
type qrCard struct {
	Title, Subtitle string
	Channel         string
	QRCode          string
	State           string
}

type qrData struct {
	Brand string
	Store store.RetailStore
	Cards []qrCard
	// Missing names the guides (and the store) without a code.
	Missing []string
	Admin   bool
}

// qrPage shows the contact-way QR codes of a store and its guides, ready
// to print: GET /console/stores/:store/qr. The codes are the rows the API
// made (POST /api/v1/stores/{id}/contact-way, /guides/{id}/contact-way);
// their images are the channel's, so this page alone lets images come from
// https: (the Content-Security-Policy of every other page keeps them to
// the console).
func (c *Console) qrPage(ctx *gin.Context) {
	brand, _, ok := c.pageBrand(ctx)
	if !ok {
		return
	}
	p := principalOf(ctx)
	rctx := ctx.Request.Context()
	scope := brand
	if p.Admin() && ctx.Query("brand") == "" {
		scope = ""
	}
	rs, err := c.o.Store.RetailStore(rctx, ctx.Param("store"), scope)
	if err != nil {
		c.fail(ctx, err)
		return
	}
	lang := language(ctx.Request)
	d := &qrData{Brand: brand, Store: *rs, Admin: p.Admin()}
	cws, err := c.o.Store.ContactWays(rctx, rs.ID, "")
	if err != nil {
		c.fail(ctx, err)
		return
	}
	add := func(title, sub string, cws []store.ContactWay) {
		n := 0
		for _, cw := range cws {
			if cw.QRCode == "" {
				continue
			}
			d.Cards = append(d.Cards, qrCard{Title: title, Subtitle: sub, Channel: channelName(cw.Channel, lang), QRCode: cw.QRCode, State: cw.State})
			n++
		}
		if n == 0 {
			d.Missing = append(d.Missing, title)
		}
	}
	add(rs.Name, translate(lang, "qr.store_code"), cws)
	if p.Allows("guides") {
		guides, err := c.o.Store.Guides(rctx, "", rs.ID, store.Page{Limit: 1000})
		if err != nil {
			c.fail(ctx, err)
			return
		}
		for _, g := range guides {
			if !g.Active || g.LeftAt != nil {
				continue
			}
			gws, err := c.o.Store.ContactWays(rctx, "", g.ID)
			if err != nil {
				c.fail(ctx, err)
				return
			}
			add(g.Name, translate(lang, "qr.guide_code", rs.Name), gws)
		}
	}
	ctx.Header("Content-Security-Policy", strings.Replace(csp, "img-src 'self' data:", "img-src 'self' data: https:", 1))
	c.render(ctx, http.StatusOK, "qr", "qr.title", "/stores", d)
}

// channelName is a channel instance's name as people know it: 企业微信 for
// wecom, "WeCom (acme)" for the corp wecom:acme; an unknown kind as keyed.
func channelName(channel, lang string) string {
	kind, instance, _ := strings.Cut(channel, ":")
	key := "channel." + kind
	name := translate(lang, key)
	if name == key {
		return channel
	}
	if instance != "" {
		name += " (" + instance + ")"
	}
	return name
}
