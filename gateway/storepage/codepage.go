package storepage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/color"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/skip2/go-qrcode"

	"github.com/scrmgw/scrmgw/gateway/membercode"
	"github.com/scrmgw/scrmgw/store"
)

// MemberCodes opens the links to members' code pages;
// *membercode.Codes is one.
type MemberCodes interface {
	LinkedCode(ctx context.Context, token string) (code string, validUntil time.Time, brand string, err error)
}

// codeData is what code.html renders.
type codeData struct {
	T              text
	Brand, Error   string
	Grouped, Code  string
	QR, Bar, Until string
	Refresh        int
}

// mountCodes registers the member code page.
func (p *Page) mountCodes(r gin.IRoutes) {
	r.GET(membercode.LinkPath+":token", p.codePage)
	r.GET(membercode.LinkPath+":token/qr.png", p.codeImage)
	r.GET(membercode.LinkPath+":token/barcode.svg", p.codeImage)
	r.GET(membercode.CardPicturePath, func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=86400")
		c.Data(http.StatusOK, "image/png", p.thumb)
	})
}

// cardThumb draws the link card's picture: a QR code in the page's
// colour (of nothing in particular: the card's code is on the page).
func cardThumb() []byte {
	q, err := qrcode.New("scrmgw member code", qrcode.Medium)
	if err != nil {
		panic(err)
	}
	q.ForegroundColor = color.RGBA{R: 0x0f, G: 0x76, B: 0x6e, A: 0xff}
	png, err := q.PNG(240)
	if err != nil {
		panic(err)
	}
	return png
}

// secure sets the headers of a member code answer: the URL holds a
// token naming the member, so nothing is cached, indexed or referred.
func secure(c *gin.Context) {
	c.Header("Content-Security-Policy", CSP)
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Robots-Tag", "noindex")
}

// linked opens the token of the path, answering the error page when it
// does not open.
func (p *Page) linked(c *gin.Context, d *codeData) (code string, until time.Time, brand string, ok bool) {
	if p.o.Codes == nil {
		d.Error = d.T.LinkInvalid
		p.renderCode(c, http.StatusNotFound, d)
		return "", time.Time{}, "", false
	}
	code, until, brand, err := p.o.Codes.LinkedCode(c.Request.Context(), c.Param("token"))
	switch {
	case errors.Is(err, membercode.ErrLinkExpired):
		d.Error = d.T.LinkExpired
		p.renderCode(c, http.StatusGone, d)
		return "", time.Time{}, "", false
	case errors.Is(err, membercode.ErrLinkInvalid):
		d.Error = d.T.LinkInvalid
		p.renderCode(c, http.StatusNotFound, d)
		return "", time.Time{}, "", false
	case err != nil:
		p.o.Log.ErrorContext(c.Request.Context(), "opening a member code link", slog.Any("error", err))
		d.Error = "服务暂时不可用 / Service unavailable"
		p.renderCode(c, http.StatusServiceUnavailable, d)
		return "", time.Time{}, "", false
	}
	return code, until, brand, true
}

// codePage is GET /m/code/{token}: the member's current code as a QR
// code, a barcode and digits; it reloads itself when the minute turns.
func (p *Page) codePage(c *gin.Context) {
	secure(c)
	lang := language(c.Query("lang"), c.GetHeader("Accept-Language"))
	d := &codeData{T: texts[lang]}
	c.Header("Content-Language", d.T.Lang)
	code, until, brand, ok := p.linked(c, d)
	if !ok {
		return
	}
	if b, err := p.o.Store.Brand(c.Request.Context(), brand); err == nil {
		d.Brand = b.Name
	}
	loc, err := time.LoadLocation(store.DefaultTimeZone)
	if err != nil {
		loc = time.UTC
	}
	// The code is current until its step ends (a step before until): the
	// page reloads then (by the wall clock, as the codes are made).
	d.Refresh = max(1, int(time.Until(until.Add(-membercode.Step))/time.Second)+1)
	d.Code, d.Grouped = code, group(code)
	d.Until = fmt.Sprintf(d.T.ValidUntil, until.In(loc).Format("15:04"))
	base := membercode.LinkPath + c.Param("token")
	d.QR = base + "/qr.png?c=" + code[len(membercode.Prefix):len(membercode.Prefix)+1]
	d.Bar = base + "/barcode.svg?c=" + code[len(membercode.Prefix):len(membercode.Prefix)+1]
	p.renderCode(c, http.StatusOK, d)
}

// codeImage is the code's QR code (qr.png) or barcode (barcode.svg).
func (p *Page) codeImage(c *gin.Context) {
	secure(c)
	d := &codeData{T: texts["zh"]}
	code, _, _, ok := p.linked(c, d)
	if !ok {
		return
	}
	if strings.HasSuffix(c.Request.URL.Path, "/qr.png") {
		png, err := qrcode.Encode(code, qrcode.Medium, 480)
		if err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		c.Data(http.StatusOK, "image/png", png)
		return
	}
	svg, err := membercode.BarcodeSVG(code)
	if err != nil {
		c.Status(http.StatusInternalServerError)
		return
	}
	c.Data(http.StatusOK, "image/svg+xml", svg)
}

// group writes digits in groups of four.
func group(code string) string {
	var b strings.Builder
	for i, r := range code {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (p *Page) renderCode(c *gin.Context, status int, d *codeData) {
	var buf bytes.Buffer
	if err := p.codeTmpl.Execute(&buf, d); err != nil {
		p.o.Log.ErrorContext(c.Request.Context(), "rendering the member code page", slog.Any("error", err))
		c.String(http.StatusInternalServerError, "internal error")
		return
	}
	c.Header("Content-Length", strconv.Itoa(buf.Len()))
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}
