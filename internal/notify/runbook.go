package notify

// Runbook is what a message says about an alarm: a Chinese summary of what
// happened and the commands docs/operations.md says to run first. The
// section itself is linked by its anchor (the runbook name).
type Runbook struct {
	// Summary says in Chinese what the alarm means.
	Summary string
	// First are the commands to run first.
	First []string
}

// Runbooks maps each runbook section of docs/operations.md that an alarm of
// template.yaml names to what its messages say. A test keeps it, the
// template and the document in step.
var Runbooks = map[string]Runbook{
	"assemble-dlq": {"组装消息进入死信队列：有请求无法组装", []string{"ceb179 dlq list --queue assemble", "ceb179 show SESSION"}},
	"sign-dlq":     {"签名任务进入死信队列：约 5 分钟内未完成签名上传", []string{"ceb179 dlq list --queue sign", "ceb179 status"}},
	"settle-stuck": {"有请求在截止 5 分钟后仍未终态", []string{"ceb179 status", "ceb179 show SESSION"}},
	"settle-missing": {"已申报的订单超过宽限时间仍没有支付记录：海关调取时只能得到 NO_DATA",
		[]string{"ceb179 status", "ceb179 coverage --since DAY declared.txt"}},
	"upload-late":      {"海关接受了迟到的上传（晚于收到请求后 120 秒）", []string{"ceb179 status"}},
	"upload-failed":    {"上传失败（FAILED）：海关没有收到数据", []string{"ceb179 status", "ceb179 show SESSION"}},
	"upload-rejected":  {"海关拒绝了上传", []string{"ceb179 status", "ceb179 show SESSION"}},
	"ingest-2000x":     {"ingest 没有应答 10000（20002 存储故障 / 20003 队列故障）", []string{"ceb179 status"}},
	"ingest-refused":   {"不在白名单中的调用方被拒绝（20009）", []string{"ceb179 status"}},
	"ingest-capped":    {"同一订单当天请求次数超过上限（CAPPED，未签名）", []string{"ceb179 show ORDER"}},
	"front-door-rate":  {"单个来源地址请求过多（前门限速规则）", []string{"ceb179 status"}},
	"assemble-no-data": {"截止时仍找不到订单的支付记录（NO_DATA）", []string{"ceb179 show ORDER"}},
	"assemble-invalid": {"支付记录不符合海关字段规则（INVALID）", []string{"ceb179 show SESSION"}},
	"bridge-heartbeat": {"5 分钟没有 hsmbridge 心跳：没有签名在进行", []string{"sc.exe query hsmbridge", "curl.exe -s http://127.0.0.1:9179/status"}},
	"bridge-no-signer": {"hsmbridge 在运行，但 5 分钟没有健康的签名器", []string{"curl.exe -s http://127.0.0.1:9179/status", "ceb179 status"}},
	"bridge-pin-refused": {"操作员卡拒绝了 PIN（或 PIN 结果不明，按拒绝处理）：该卡已停用，不要重试",
		[]string{"curl.exe -s http://127.0.0.1:9179/status", "hsmbridge pin-reset NAME（修正 PIN 文件之后）"}},
	"bridge-signers-down": {"hsmbridge 的所有签名器都不可用：现在没有任何签名", []string{"curl.exe -s http://127.0.0.1:9179/status", "ceb179 status"}},
	"bridge-cert-expiry":  {"签名证书 30 天内到期", []string{"curl.exe -s http://127.0.0.1:9179/status", "ceb179 cert list"}},
	"notify-failed":       {"告警消息未能送达某个群机器人", []string{"ceb179 notify test"}},
	"notify-dlq":          {"告警消息进入死信队列：群机器人没有收到这些告警", []string{"ceb179 notify test"}},
	"lambda-errors":       {"Lambda 函数报告错误", []string{"aws logs tail /aws/lambda/<stack>-<function> --since 30m --filter-pattern ERROR"}},
	"lambda-throttles":    {"Lambda 函数被限流", []string{"aws logs tail /aws/lambda/<stack>-<function> --since 30m"}},
}

// runbookOf returns the runbook of c, or a generic one.
func runbookOf(c Change) Runbook {
	if rb, ok := Runbooks[c.Runbook]; ok {
		return rb
	}
	return Runbook{Summary: "CloudWatch 告警状态变化", First: []string{"ceb179 status"}}
}
