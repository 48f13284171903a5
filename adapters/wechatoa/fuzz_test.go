package wechatoa

import (
	"testing"
)

// FuzzParseMessage: no callback body makes the parser or the mapping
// panic, and every message mapped has a sender and a dedup key.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oA]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[附近门店]]></Content><MsgId>1</MsgId></xml>`,
		`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[oA]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_s:sh-1]]></EventKey><Ticket><![CDATA[t]]></Ticket></xml>`,
		`<xml><FromUserName>oA</FromUserName><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>31.2</Latitude><Longitude>121.4</Longitude></xml>`,
		`<xml><FromUserName>oA</FromUserName><MsgType>voice</MsgType><Recognition>我的导购</Recognition><MsgId>9</MsgId></xml>`,
		`<xml><FromUserName>oA</FromUserName><MsgType>location</MsgType><Location_X>31.2</Location_X><Location_Y>121.4</Location_Y></xml>`,
		`<xml><FromUserName>oA</FromUserName><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>NaN</Latitude><Longitude>1e999</Longitude></xml>`,
		`<xml>`, ``,
	} {
		f.Add([]byte(s))
	}
	c := &Client{key: ChannelName, cfg: Config{Brand: "acme"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMessage(data)
		if err != nil {
			return
		}
		in := c.inbound(m)
		if in == nil {
			return
		}
		if in.SenderID == "" || in.DedupKey == "" || in.Channel != ChannelName {
			t.Errorf("mapped %q to %+v", data, in)
		}
		// What is recorded always encodes: a bad coordinate would make
		// the inbox refuse it, and WeChat retry it for ever.
		if _, err := in.AppendJSON(nil); err != nil {
			t.Errorf("encoding %+v: %v", in, err)
		}
	})
}
