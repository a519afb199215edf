// The API's field messages are English sentences. The most common ones (marshmallow's own, and the
// schemas' shared wordings) are said in Chinese here when the console is in Chinese; any other is shown
// as the API wrote it, which is still specific, rather than replaced by something vaguer.
const RULES: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^Missing data for required field\.?$/, () => '必填'],
  [/^Field may not be null\.?$/, () => '不能为空'],
  [/^(must not be blank|may not be blank|must not be empty)$/i, () => '不能为空白'],
  [/^Unknown field\.?$/, () => '无法识别的字段'],
  [/^Not a valid (integer|number)\.?$/, () => '请填写数字'],
  [/^Not a valid date\.?$/, () => '日期格式不正确'],
  [/^Not a valid datetime\.?$/, () => '时间格式不正确'],
  [/^Not a valid (URL|url)\.?$/, () => '网址格式不正确'],
  [/^Not a valid (string|boolean|list|mapping|email address)\.?$/, () => '格式不正确'],
  [/^must be (\d+) to (\d+) characters$/, (m) => `长度须为 ${m[1]} 至 ${m[2]} 个字符`],
  [/^must be at least (\d+) characters$/, (m) => `至少 ${m[1]} 个字符`],
  [/^must be at most (\d+) characters$/, (m) => `最多 ${m[1]} 个字符`],
  [/^Length must be between (\d+) and (\d+)\.?$/, (m) => `长度须在 ${m[1]} 至 ${m[2]} 之间`],
  [/^Longer than maximum length (\d+)\.?$/, (m) => `最多 ${m[1]} 个字符`],
  [/^must be one of:? (.*)$/, (m) => `须为以下之一：${m[1]}`],
  [/^Must be one of:? (.*)\.?$/, (m) => `须为以下之一：${m[1]}`],
  [/^must be digits only( \(0-9\))?$/, () => '只能填写数字'],
  [/^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.?$/, (m) => `须在 ${m[1]} 至 ${m[2]} 之间`],
  [/^Must be greater than or equal to (\S+)\.?$/, (m) => `不能小于 ${m[1]}`],
  [/^Must be less than or equal to (\S+)\.?$/, (m) => `不能大于 ${m[1]}`],
  [/^must not be in the future$/, () => '不能晚于今天'],
  [/^must not be in the past$/, () => '不能早于现在'],
  [/^is wrong$/, () => '不正确'],
  [/^already taken$/, () => '已被占用'],
]

export function inChinese(message: string): string {
  for (const [pattern, say] of RULES) {
    const m = message.match(pattern)
    if (m) return say(m)
  }
  return message
}
