package customs

import (
	"bytes"
	"fmt"
)

// Document is a payExInfoStr decoded into its values: the input of
// `ceb179 sign`, and the decoded part of a Received document.
type Document struct {
	// SessionID is customs' sessionID.
	SessionID string
	// Head is the decoded payExchangeInfoHead. Its TotalAmount keeps the
	// exact text of the number in the input.
	Head Head
	// Lists is the decoded payExchangeInfoLists.
	Lists []Order
	// ServiceTime is the text of serviceTime, decimal digits.
	ServiceTime string
}

// ReadDocument reads a document to be signed: a JSON object with the keys
// sessionID, payExchangeInfoHead, payExchangeInfoLists and serviceTime, in
// any order, with any white space and any JSON escaping (\uXXXX, \/ ...).
// certNo and signValue may be present, as strings, and are ignored: signing
// replaces them. A leading UTF-8 byte order mark is skipped. Keys are
// matched exactly and may not repeat; unknown keys are errors, so that a
// misspelt key such as payExchangeInfoList is caught. serviceTime may be a
// string or a number of decimal digits; totalAmount must be a JSON number
// and keeps its text. Missing keys inside the head or an order read as
// empty strings, for Validate to report.
func ReadDocument(b []byte) (*Document, error) {
	const what = "document"
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	b = bytes.TrimSpace(b)
	top, err := readTop(what, b, KeyCertNo, KeySignValue)
	if err != nil {
		return nil, err
	}
	for _, k := range []string{KeyCertNo, KeySignValue} {
		if raw, ok := top.members[k]; ok {
			if _, err := readString(what, k, raw); err != nil {
				return nil, err
			}
		}
	}
	d := top.doc
	return &d, nil
}

// Canonical returns the document in canonical form, ready to sign: the head
// and lists from MarshalHead and MarshalLists, sessionID and serviceTime as
// they are. It does not apply the field rules; call Validate first.
func (d *Document) Canonical() (Unsigned, error) {
	head, err := MarshalHead(d.Head)
	if err != nil {
		return Unsigned{}, fmt.Errorf("canonical %s: %w", KeyHead, err)
	}
	lists, err := MarshalLists(d.Lists)
	if err != nil {
		return Unsigned{}, fmt.Errorf("canonical %s: %w", KeyLists, err)
	}
	return Unsigned{SessionID: d.SessionID, Head: head, Lists: lists, ServiceTime: d.ServiceTime}, nil
}

var headKeys = []string{"guid", "initalRequest", "initalResponse", "ebpCode", "payCode",
	"payTransactionId", "totalAmount", "currency", "verDept", "payType", "tradingTime", "note"}

// decodeHead decodes the raw payExchangeInfoHead strictly: exact keys, each
// at most once, strings as strings and totalAmount as a number.
func decodeHead(what string, raw []byte) (Head, error) {
	var h Head
	m, err := readObject(what, KeyHead, raw, headKeys...)
	if err != nil {
		return h, err
	}
	fields := []struct {
		key string
		dst *string
	}{
		{"guid", &h.GUID}, {"initalRequest", &h.InitalRequest}, {"initalResponse", &h.InitalResponse},
		{"ebpCode", &h.EbpCode}, {"payCode", &h.PayCode}, {"payTransactionId", &h.PayTransactionID},
		{"currency", &h.Currency}, {"verDept", &h.VerDept}, {"payType", &h.PayType},
		{"tradingTime", &h.TradingTime}, {"note", &h.Note},
	}
	for _, f := range fields {
		if v, ok := m[f.key]; ok {
			if *f.dst, err = readString(what, KeyHead+"."+f.key, v); err != nil {
				return h, err
			}
		}
	}
	if v, ok := m["totalAmount"]; ok {
		path := KeyHead + ".totalAmount"
		if len(v) > 0 && v[0] == '"' {
			return h, parseErr(what, path, ErrMalformed, "%s must be a JSON number, not a string", path)
		}
		if err := h.TotalAmount.UnmarshalJSON(v); err != nil || string(v) == "null" {
			return h, parseErr(what, path, ErrMalformed, "%s must be a JSON number", path)
		}
	}
	return h, nil
}

// decodeLists decodes the raw payExchangeInfoLists strictly.
func decodeLists(what string, raw []byte) ([]Order, error) {
	elems, err := readArray(what, KeyLists, raw)
	if err != nil {
		return nil, err
	}
	orders := make([]Order, len(elems))
	for i, e := range elems {
		path := fmt.Sprintf("%s[%d]", KeyLists, i)
		m, err := readObject(what, path, e, "orderNo", "goodsInfo", "recpAccount", "recpCode", "recpName")
		if err != nil {
			return nil, err
		}
		o := &orders[i]
		for _, f := range []struct {
			key string
			dst *string
		}{{"orderNo", &o.OrderNo}, {"recpAccount", &o.RecpAccount}, {"recpCode", &o.RecpCode}, {"recpName", &o.RecpName}} {
			if v, ok := m[f.key]; ok {
				if *f.dst, err = readString(what, path+"."+f.key, v); err != nil {
					return nil, err
				}
			}
		}
		v, ok := m["goodsInfo"]
		if !ok {
			continue
		}
		gpath := path + ".goodsInfo"
		goods, err := readArray(what, gpath, v)
		if err != nil {
			return nil, err
		}
		o.GoodsInfo = make([]Goods, len(goods))
		for j, g := range goods {
			p := fmt.Sprintf("%s[%d]", gpath, j)
			gm, err := readObject(what, p, g, "gname", "itemLink")
			if err != nil {
				return nil, err
			}
			if v, ok := gm["gname"]; ok {
				if o.GoodsInfo[j].Gname, err = readString(what, p+".gname", v); err != nil {
					return nil, err
				}
			}
			if v, ok := gm["itemLink"]; ok {
				if o.GoodsInfo[j].ItemLink, err = readString(what, p+".itemLink", v); err != nil {
					return nil, err
				}
			}
		}
	}
	return orders, nil
}
