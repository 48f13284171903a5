// Package storepage serves the pages members open on their phones: the
// store page and the member code page.
//
// The store page (门店H5) is GET /m/stores?brand=ID, linked from the brand's app, mini
// program or Official Account menu. It asks for the member's location
// (a small script, /m/static/locate.js, asks the browser once and reloads
// with lat and lng) or takes a city, and lists the nearest active stores
// carrying the brand, nearest first (the assignment's nearest-store index,
// gateway/assign), with distance, opening hours (open now or not, in the
// store's zone), a map link and their guides. A member adds a guide (or
// the store) by the contact-way QR code made through the admin API
// (POST /api/v1/stores/{id}/contact-way, /guides/{id}/contact-way): its
// state names the guide or store, so the binding follows when WeCom
// reports the new contact.
//
// Each store links its cloud store (shop.go), GET
// /m/stores/{id}/products?brand=ID: what the store carries of the brand,
// at its price, in stock or not, each product linking to its page on the
// brand's shop. Opened by a guide's share link (?share_token=), it names
// the guide and carries the token on in every product link, so the
// shop's order credits the guide and store.
//
// The page is server-rendered with html/template from embedded assets, no
// framework; Chinese first, English when Accept-Language (or ?lang=en)
// prefers it. Every answer carries a strict Content-Security-Policy: no
// inline script or style, scripts and styles from the gateway only,
// images from the gateway or https (WeCom's QR codes), no framing. It
// reads and never writes.
//
// The member code page (codepage.go) is GET /m/code/{token}, the link the
// member bot sends with a member code (gateway/membercode): the member's
// current code as a barcode, digits and a QR code, reloading itself when
// the minute turns; never cached, indexed or referred.
package storepage
