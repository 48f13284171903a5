package wechatoa_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/scrmgw/scrmgw/adapters"
	"github.com/scrmgw/scrmgw/adapters/wechatoa"
	"github.com/scrmgw/scrmgw/adapters/wechatoa/oafake"
)

// pictures serves the pictures messages name by URL, and counts how often
// each path was fetched.
type pictures struct {
	srv      *httptest.Server
	png, gif []byte
	mu       sync.Mutex
	hits     map[string]int
}

func encoded(t *testing.T, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	img := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.White, color.RGBA{R: 200, A: 255}})
	img.SetColorIndex(3, 4, 1)
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newPictures(t *testing.T) *pictures {
	t.Helper()
	p := &pictures{hits: map[string]int{},
		png: encoded(t, func(b *bytes.Buffer, i image.Image) error { return png.Encode(b, i) }),
		gif: encoded(t, func(b *bytes.Buffer, i image.Image) error { return gif.Encode(b, i, nil) })}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hits[r.URL.Path]++
		p.mu.Unlock()
		switch path := r.URL.Path; {
		case strings.HasPrefix(path, "/pic/") && strings.HasSuffix(path, ".gif"):
			w.Header().Set("Content-Type", "image/gif")
			_, _ = w.Write(p.gif)
		case strings.HasPrefix(path, "/pic/"):
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(p.png)
		case path == "/page.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte("<html><body>not a picture</body></html>"))
		case path == "/huge.png":
			big := make([]byte, 10<<20+1)
			copy(big, p.png)
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write(big)
		case path == "/broken.png":
			http.Error(w, "upstream down", http.StatusBadGateway)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *pictures) url(path string) string { return p.srv.URL + path }

func (p *pictures) hitsOf(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

// mediaRig is a rig whose account follows oChen, and fetches pictures
// from a local server (wechat_oa.media_fetch_private).
func mediaRig(t *testing.T) (*rig, *pictures) {
	t.Helper()
	r := newRigWith(t, wechatoa.ModePlaintext, func(c *wechatoa.Config) { c.MediaFetchPrivate = true })
	r.fake.AddFollower("oChen", "uChen")
	r.fake.Follow(t, r.url, "oChen")
	return r, newPictures(t)
}

// sentBody is the fake's last custom/send to oChen as JSON.
func sentBody(t *testing.T, r *rig) string {
	t.Helper()
	s := r.fake.WaitSent(t, "a customer-service message", "oChen", "custom/send")
	b, _ := json.Marshal(s.Body)
	return s.Path + " " + string(b)
}

// TestSendPictureByURL: an image and a mini program card's cover named
// by URL are fetched, uploaded as temporary media (the exact multipart
// part WeChat gets), and sent by the media id WeChat answered; a second
// send of the same URL, also from another replica, uploads nothing.
func TestSendPictureByURL(t *testing.T) {
	r, pics := mediaRig(t)
	ctx := context.Background()
	cover := pics.url("/pic/spring/cover.png")
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": cover}}); err != nil {
		t.Fatal(err)
	}
	ups := r.fake.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	up := ups[0]
	if up.Type != "image" || up.Filename != "cover.png" || up.ContentType != "image/png" || up.FileLength != strconv.Itoa(len(pics.png)) ||
		!bytes.Equal(up.Data, pics.png) {
		t.Errorf("upload: type %q, filename %q, content type %q, filelength %q, %d bytes; want image, cover.png, image/png, the picture's %d bytes",
			up.Type, up.Filename, up.ContentType, up.FileLength, len(up.Data), len(pics.png))
	}
	want := `/cgi-bin/message/custom/send {"image":{"media_id":"` + up.MediaID + `"},"msgtype":"image","touser":"oChen"}`
	if got := sentBody(t, r); got != want {
		t.Errorf("fake took\n%s\nwant\n%s", got, want)
	}

	// A mini program card's cover: a GIF this time.
	card := map[string]string{"title": "会员中心", "appid": "wxmini", "page": "pages/index", "picurl": pics.url("/pic/card.gif")}
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindMiniProgram, Fields: card}); err != nil {
		t.Fatal(err)
	}
	ups = r.fake.Uploads()
	if len(ups) != 2 || ups[1].Filename != "card.gif" || ups[1].ContentType != "image/gif" || !bytes.Equal(ups[1].Data, pics.gif) {
		t.Fatalf("uploads %+v, want the card's GIF second", ups)
	}
	want = `/cgi-bin/message/custom/send {"miniprogrampage":{"appid":"wxmini","pagepath":"pages/index","thumb_media_id":"` + ups[1].MediaID +
		`","title":"会员中心"},"msgtype":"miniprogrampage","touser":"oChen"}`
	if got := sentBody(t, r); got != want {
		t.Errorf("fake took\n%s\nwant\n%s", got, want)
	}

	// The same picture again, and from another replica: no upload.
	for _, ch := range []*wechatoa.Client{r.ch, r.replica(t)} {
		if _, err := ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": cover}}); err != nil {
			t.Fatal(err)
		}
		want := `/cgi-bin/message/custom/send {"image":{"media_id":"` + up.MediaID + `"},"msgtype":"image","touser":"oChen"}`
		if got := sentBody(t, r); got != want {
			t.Errorf("fake took\n%s\nwant\n%s", got, want)
		}
	}
	if n, hits := len(r.fake.Uploads()), pics.hitsOf("/pic/spring/cover.png"); n != 2 || hits != 1 {
		t.Errorf("%d uploads, the picture fetched %d times; want 2 and 1 (cached)", n, hits)
	}

	// WeChat forgot the media (3 days): the send fails, retryably, and
	// the retry uploads the picture again.
	r.fake.ExpireMedia()
	_, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": cover}})
	if err == nil || !adapters.Retryable(err) || errors.Is(err, adapters.ErrInvalidMessage) || !strings.Contains(err.Error(), "40007") {
		t.Fatalf("send with a forgotten media = %v, want a retryable error naming 40007", err)
	}
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": cover}}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	ups = r.fake.Uploads()
	if len(ups) != 3 {
		t.Fatalf("%d uploads, want the picture uploaded again", len(ups))
	}
	want = `/cgi-bin/message/custom/send {"image":{"media_id":"` + ups[2].MediaID + `"},"msgtype":"image","touser":"oChen"}`
	if got := sentBody(t, r); got != want {
		t.Errorf("fake took\n%s\nwant\n%s", got, want)
	}

	// A media id of the operator's is sent as it is; an unknown one is
	// the message's fault.
	r.fake.AddMedia("image", "OPERATOR_MEDIA")
	if _, err := r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"media_id": "OPERATOR_MEDIA"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := sentBody(t, r), `/cgi-bin/message/custom/send {"image":{"media_id":"OPERATOR_MEDIA"},"msgtype":"image","touser":"oChen"}`; got != want {
		t.Errorf("fake took\n%s\nwant\n%s", got, want)
	}
	_, err = r.ch.Send(ctx, &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"media_id": "GONE"}})
	if !errors.Is(err, adapters.ErrInvalidMessage) || adapters.Retryable(err) {
		t.Errorf("send of an unknown media id = %v, want ErrInvalidMessage", err)
	}
	if n := len(r.fake.Uploads()); n != 3 {
		t.Errorf("%d uploads, want none more", n)
	}
}

// TestSendPictureFailures: a picture that cannot be used is a permanent
// ErrInvalidMessage that says why; a failure to fetch or upload it this
// time is retried. Nothing is sent either way.
func TestSendPictureFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      string
		before    func(f *oafake.Fake)
		permanent bool
		reason    string
	}{
		{"not a picture", "/page.html", nil, true, "not a JPG, PNG, GIF or BMP picture"},
		{"404", "/missing.png", nil, true, "HTTP 404"},
		{"over 10 MB", "/huge.png", nil, true, "over WeChat's 10 MB"},
		{"source 502", "/broken.png", nil, false, "HTTP 502"},
		{"upload refused", "/pic/a.png", func(f *oafake.Fake) { f.FailNextUpload(oafake.CodeInvalidFileType) }, true, "40005"},
		{"upload busy", "/pic/a.png", func(f *oafake.Fake) { f.FailNextUpload(-1) }, false, "-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, pics := mediaRig(t)
			if tc.before != nil {
				tc.before(r.fake)
			}
			m := &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": pics.url(tc.path)}}
			_, err := r.ch.Send(context.Background(), m)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			if errors.Is(err, adapters.ErrInvalidMessage) != tc.permanent || adapters.Retryable(err) == tc.permanent {
				t.Errorf("err = %v: want permanent %v", err, tc.permanent)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
			if got := r.fake.Sent(); len(got) != 0 {
				t.Errorf("the fake took %+v", got)
			}
			if tc.before != nil && !tc.permanent {
				if _, err := r.ch.Send(context.Background(), m); err != nil {
					t.Fatalf("retry: %v", err)
				}
			}
		})
	}
}

// TestSendPictureRefusesPrivateAddresses: by default a picture on the
// gateway's own network (here loopback) is never fetched, and the send
// fails for good naming wechat_oa.media_fetch_private, which allows it.
func TestSendPictureRefusesPrivateAddresses(t *testing.T) {
	allowed, pics := mediaRig(t)
	r := newRig(t, wechatoa.ModePlaintext, nil)
	r.fake.AddFollower("oChen", "uChen")
	r.fake.Follow(t, r.url, "oChen")
	const secret = "Signature=c2VjcmV0"
	m := &adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": pics.url("/pic/inside.png") + "?" + secret}}
	_, err := r.ch.Send(context.Background(), m)
	if !errors.Is(err, adapters.ErrInvalidMessage) || adapters.Retryable(err) || !strings.Contains(err.Error(), "wechat_oa.media_fetch_private") {
		t.Fatalf("Send = %v, want a permanent refusal naming wechat_oa.media_fetch_private", err)
	}
	if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "/pic/inside.png?…") {
		t.Errorf("error %q: want the link without its query", err)
	}
	if n := pics.hitsOf("/pic/inside.png"); n != 0 || len(r.fake.Uploads()) != 0 || len(r.fake.Sent()) != 0 {
		t.Errorf("fetched %d times, %d uploads, %d sends; want none", n, len(r.fake.Uploads()), len(r.fake.Sent()))
	}
	// Allowed: the same send goes through.
	if _, err := allowed.ch.Send(context.Background(), m); err != nil {
		t.Fatalf("with media_fetch_private: %v", err)
	}
	if n := len(allowed.fake.Uploads()); n != 1 {
		t.Errorf("%d uploads, want 1", n)
	}
}

// TestPreviewPicture: a preview shows the picture's URL where the send
// carries its media id, and refuses what a send refuses.
func TestPreviewPicture(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    adapters.Outbound
		want string
	}{
		{"image", adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": "https://acme.example/p.png"}},
			`{"touser":"oChen","msgtype":"image","image":{"media_id":"https://acme.example/p.png"}}`},
		{"card", adapters.Outbound{To: "oChen", Kind: adapters.KindMiniProgram, Fields: map[string]string{"title": "t", "appid": "wxmini", "page": "p", "picurl": "https://acme.example/c.png"}},
			`{"touser":"oChen","msgtype":"miniprogrampage","miniprogrampage":{"title":"t","appid":"wxmini","pagepath":"p","thumb_media_id":"https://acme.example/c.png"}}`},
		{"image without picture", adapters.Outbound{To: "oChen", Kind: adapters.KindImage}, "needs media_id or picurl"},
		{"picurl not a link", adapters.Outbound{To: "oChen", Kind: adapters.KindImage, Fields: map[string]string{"picurl": "cover.png"}}, "not an http(s) link"},
		{"card without cover", adapters.Outbound{To: "oChen", Kind: adapters.KindMiniProgram, Fields: map[string]string{"appid": "wxmini", "page": "p"}}, "pic_media_id or picurl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := wechatoa.Spec().Preview(&tc.m)
			if strings.HasPrefix(tc.want, "{") {
				if err != nil || string(req.Body) != tc.want || req.API != "message/custom/send" {
					t.Errorf("Preview = %v, %v; want %s", req, err, tc.want)
				}
				return
			}
			if !errors.Is(err, adapters.ErrInvalidMessage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Preview error %v, want ErrInvalidMessage saying %q", err, tc.want)
			}
		})
	}
}
