// Package wechatoa is the channel of a brand's WeChat Official Account
// (公众号): followers are members, their messages go to the bots, and
// workflows reach them with customer-service messages while WeChat's
// 48-hour window after their last interaction is open and with template
// messages outside it (Spec().Window; the engine chooses).
//
// Callbacks arrive at /callbacks/wechat-oa (instance acme:
// /callbacks/wechat-oa/acme): the GET server verification (signature,
// timestamp, nonce, echostr), then messages and events in plaintext,
// compatible or safe (AES) mode, each checked against the replay window,
// recorded durably (deduplicated by MsgId, or FromUserName+CreateTime
// for events) and answered "success" at once; everything slow happens
// from the queue, well within WeChat's 5 s.
//
// What arrives becomes channel-neutral deliveries: subscribe (with a
// parametric QR code's qrscene_ scene, like a contact way's state: "s:"
// a store, "g:" a guide) and SCAN are contact.added, unsubscribe
// contact.removed; text, voice (with recognition, as text), image,
// location and menu clicks (CLICK, as text of the menu key) go to the
// bots. user/info gives the follower's UnionID, which joins them with
// the same person's WeCom identity (adapters.UnionIDChannel).
//
// The package uses github.com/silenceper/wechat/v2's util (signatures,
// the AES message crypto) and officialaccount/message (the XML and
// customer-service message shapes); its API calls go to Config.APIBase
// with an access token per account shared by the replicas
// (adapters.TokenCache). oafake is a fake Official Account: its API and a
// callback sender that speak the real protocol.
package wechatoa
