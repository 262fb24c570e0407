package customs_test

import (
	"fmt"
	"time"

	"github.com/ceb179/ceb179/internal/customs"
)

func ExampleParseOpenReq() {
	body := []byte("openReq=%7B%22orderNo%22%3A%22ord201800002%22%2C%22sessionID%22%3A%22fe2374-8fnejf97-32839218%22%2C%22serviceTime%22%3A1533271903898%7D")
	req, err := customs.ParseOpenReq("application/x-www-form-urlencoded; charset=UTF-8", body)
	if err != nil {
		fmt.Println(customs.NewAck(customs.CodeFor(err), err.Error(), time.UnixMilli(0)).Code)
		return
	}
	fmt.Println(req.OrderNo, req.SessionID, req.ServiceTime)
	fmt.Printf("%s\n", customs.SuccessAck(time.UnixMilli(1533271904000)).JSON())
	// Output:
	// ord201800002 fe2374-8fnejf97-32839218 1533271903898
	// {"code":"10000","message":"","serviceTime":1533271904000}
}

func ExampleNewUnsigned() {
	head := customs.Head{
		GUID: "2B8E5F1C-6A0D-4C37-9B1E-8F2D3A4C5E6F", InitalRequest: "<xml>…</xml>", InitalResponse: "<xml>…</xml>",
		EbpCode: "46016602EV", PayCode: "1537923071", PayTransactionID: "4200000681202009235085032319",
		TotalAmount: "5.0", Currency: "142", VerDept: "3", PayType: "4", TradingTime: "20200923145426",
	}
	orders := []customs.Order{{
		OrderNo: "202009231454218421271832", RecpAccount: "46016602EV", RecpCode: "46016602EV", RecpName: "某某公司",
		GoodsInfo: []customs.Goods{{Gname: "面膜", ItemLink: "http://m.example.com/item?itemId=1&shopId=2"}},
	}}
	if err := customs.Validate(head, orders); err != nil {
		fmt.Println(err)
		return
	}
	u, err := customs.NewUnsigned("fe2374-8fnejf97-32839218", head, orders, time.UnixMilli(1601282210417))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", u.SignSource())
	// Sign u.SignSource(), then upload EncodeUploadForm(u.PayExInfoStr(certNo, signValue)).
	// Output:
	// "sessionID":"fe2374-8fnejf97-32839218"||"payExchangeInfoHead":"{"guid":"2B8E5F1C-6A0D-4C37-9B1E-8F2D3A4C5E6F","initalRequest":"<xml>…</xml>","initalResponse":"<xml>…</xml>","ebpCode":"46016602EV","payCode":"1537923071","payTransactionId":"4200000681202009235085032319","totalAmount":5.0,"currency":"142","verDept":"3","payType":"4","tradingTime":"20200923145426","note":""}"||"payExchangeInfoLists":"[{"orderNo":"202009231454218421271832","goodsInfo":[{"gname":"面膜","itemLink":"http://m.example.com/item?itemId=1&shopId=2"}],"recpAccount":"46016602EV","recpCode":"46016602EV","recpName":"某某公司"}]"||"serviceTime":"1601282210417"
}
