package wecomfake_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/scrmgw/scrmgw/adapters/wecom/wecomfake"
)

// pngContent makes content that sniffs as a PNG.
func pngContent(n int) []byte {
	b := make([]byte, n)
	copy(b, "\x89PNG\x0D\x0A\x1A\x0A")
	return b
}

type uploadAnswer struct {
	Errcode int    `json:"errcode"`
	Errmsg  string `json:"errmsg"`
	Type    string `json:"type"`
	MediaID string `json:"media_id"`
}

func upload(t *testing.T, f *wecomfake.Server, tok, typ, part string, data []byte) uploadAnswer {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename="a.png"; filelength=%d`, part, len(data)))
	h.Set("Content-Type", "image/png")
	w, _ := mw.CreatePart(h)
	_, _ = w.Write(data)
	_ = mw.Close()
	resp, err := http.Post(f.URL()+wecomfake.PathMediaUpload+"?access_token="+tok+"&type="+typ, mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var a uploadAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("HTTP %d %s: %v", resp.StatusCode, b, err)
	}
	return a
}

// TestMediaUpload: media/upload checks the type, the size and an image's
// format, and issues media ids that messages may use for 3 days.
func TestMediaUpload(t *testing.T) {
	now := time.Unix(1700000000, 0)
	f := wecomfake.New(t, wecomfake.WithClock(func() time.Time { return now }))
	tok := token(t, f, f.Secret())
	for name, tc := range map[string]struct {
		typ  string
		part string
		data []byte
		code int
	}{
		"no type":         {"", "media", pngContent(100), wecomfake.CodeInvalidMediaType},
		"bad type":        {"gif", "media", pngContent(100), wecomfake.CodeInvalidMediaType},
		"no media part":   {"image", "file", pngContent(100), wecomfake.CodeMissingMedia},
		"5 bytes":         {"file", "media", []byte("12345"), wecomfake.CodeInvalidFileSize},
		"not a png":       {"image", "media", []byte("<html>hello</html>"), wecomfake.CodeInvalidFileType},
		"image too large": {"image", "media", pngContent(10<<20 + 1), wecomfake.CodeInvalidImageSize},
		"file too large":  {"file", "media", pngContent(20<<20 + 1), wecomfake.CodeInvalidFileSize},
	} {
		if a := upload(t, f, tok, tc.typ, tc.part, tc.data); a.Errcode != tc.code {
			t.Errorf("%s: errcode %d (%s), want %d", name, a.Errcode, a.Errmsg, tc.code)
		}
	}
	if n := len(f.Uploads()); n != 0 {
		t.Fatalf("%d refused uploads recorded", n)
	}
	a := upload(t, f, tok, "image", "media", pngContent(100))
	if a.Errcode != 0 || a.Type != "image" || a.MediaID == "" {
		t.Fatalf("upload: %+v", a)
	}
	if ups := f.Uploads(); len(ups) != 1 || ups[0].MediaID != a.MediaID || ups[0].Size != 100 || ups[0].Filename != "a.png" || ups[0].ContentType != "image/png" {
		t.Errorf("uploads = %+v", ups)
	}

	// The media serves a kf image; a file's id, an unknown id and, after
	// 3 days, the image's own are 40007.
	contact := token(t, f, f.ContactSecret())
	if b := upload(t, f, contact, "file", "media", []byte("a price list")); b.Errcode != 0 {
		t.Fatalf("upload with the contact token: %+v", b)
	}
	file := f.Uploads()[1].MediaID
	send := func(mediaID string) answer {
		f.QueueKFMessages("wk1", wecomfake.KFText("wmC", "hi"))
		return post(t, f.URL()+wecomfake.PathKFSendMsg+"?access_token="+tok,
			`{"touser":"wmC","open_kfid":"wk1","msgtype":"image","image":{"media_id":"`+mediaID+`"}}`)
	}
	if r := send(a.MediaID); r.Errcode != 0 {
		t.Errorf("kf image: %+v", r)
	}
	for name, id := range map[string]string{"file as image": file, "unknown": "nope"} {
		if r := send(id); r.Errcode != wecomfake.CodeInvalidMediaID {
			t.Errorf("%s: errcode %d, want 40007", name, r.Errcode)
		}
	}
	now = now.Add(72 * time.Hour)
	tok = token(t, f, f.Secret())
	if r := send(a.MediaID); r.Errcode != wecomfake.CodeInvalidMediaID {
		t.Errorf("3 days later: errcode %d, want 40007", r.Errcode)
	}
}

// TestMessageChecks: attachments, kf messages and app messages are
// refused over WeCom's limits, with objects of another msgtype, and app
// news without articles.
func TestMessageChecks(t *testing.T) {
	f := wecomfake.New(t)
	f.AddContact(wecomfake.Contact{ExternalUserID: "wmC", FollowUsers: []wecomfake.FollowUser{{UserID: "li"}}})
	f.AddMedia("image", "IMG")
	app := token(t, f, f.Secret())
	contact := token(t, f, f.ContactSecret())
	long := strings.Repeat("a", 129)
	task := func(att string) string {
		return `{"chat_type":"single","external_userid":["wmC"],"sender":"li","attachments":[` + att + `]}`
	}
	for name, tc := range map[string]struct {
		path, tok, body string
		code            int
	}{
		"link title too long": {wecomfake.PathAddMsgTemplate, contact, task(`{"msgtype":"link","link":{"title":"` + long + `","url":"https://e.com"}}`), wecomfake.CodeInvalidParameter},
		"mini title too long": {wecomfake.PathAddMsgTemplate, contact, task(`{"msgtype":"miniprogram","miniprogram":{"title":"` + long[:65] + `","pic_media_id":"IMG","appid":"wx","page":"p"}}`), wecomfake.CodeInvalidParameter},
		"mini unknown cover":  {wecomfake.PathAddMsgTemplate, contact, task(`{"msgtype":"miniprogram","miniprogram":{"title":"t","pic_media_id":"NOPE","appid":"wx","page":"p"}}`), wecomfake.CodeInvalidMediaID},
		"image ok":            {wecomfake.PathAddMsgTemplate, contact, task(`{"msgtype":"image","image":{"media_id":"IMG"}}`), 0},
		"text too long":       {wecomfake.PathAddMsgTemplate, contact, `{"chat_type":"single","external_userid":["wmC"],"sender":"li","text":{"content":"` + strings.Repeat("a", 4001) + `"}}`, wecomfake.CodeInvalidParameter},
		"app news empty":      {wecomfake.PathMessageSend, app, `{"touser":"li","msgtype":"news","agentid":1000002,"news":{"articles":[]}}`, wecomfake.CodeInvalidParameter},
		"app news no url":     {wecomfake.PathMessageSend, app, `{"touser":"li","msgtype":"news","agentid":1000002,"news":{"articles":[{"title":"t"}]}}`, wecomfake.CodeInvalidParameter},
		"app news ok":         {wecomfake.PathMessageSend, app, `{"touser":"li","msgtype":"news","agentid":1000002,"news":{"articles":[{"title":"t","url":"https://e.com"}]}}`, 0},
		"textcard long btn":   {wecomfake.PathMessageSend, app, `{"touser":"li","msgtype":"textcard","agentid":1000002,"textcard":{"title":"t","description":"d","url":"https://e.com","btntxt":"查看详情吧"}}`, wecomfake.CodeInvalidParameter},
		"kf two objects":      {wecomfake.PathKFSendMsg, app, `{"touser":"wmC","open_kfid":"wk1","msgtype":"text","text":{"content":"x"},"image":{"media_id":"IMG"}}`, wecomfake.CodeInvalidParameter},
		"kf link no thumb":    {wecomfake.PathKFSendMsg, app, `{"touser":"wmC","open_kfid":"wk1","msgtype":"link","link":{"title":"t","url":"https://e.com","thumb_media_id":"NOPE"}}`, wecomfake.CodeInvalidMediaID},
	} {
		f.QueueKFMessages("wk1", wecomfake.KFText("wmC", "hi"))
		if a := post(t, f.URL()+tc.path+"?access_token="+tc.tok, tc.body); a.Errcode != tc.code {
			t.Errorf("%s: errcode %d (%s), want %d", name, a.Errcode, a.Errmsg, tc.code)
		}
	}
}
