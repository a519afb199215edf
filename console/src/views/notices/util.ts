// Small helpers of the notices and admin pages: times in Shanghai, who did it, the nodes of the scope.
import { useNodes as sharedNodes } from '@/components/nodes'
import { onBeforeUnmount, ref } from 'vue'
import { api, call, type components } from '@/api/client'
import { i18n } from '@/i18n'

// Punctuation by language: full-width in Chinese, ASCII in English.
const isEn = () => (i18n.global.locale as unknown as { value: string }).value === 'en'
/** "a（b）" in Chinese, "a (b)" in English. */
export function paren(a: string, b: string | number) { return isEn() ? `${a} (${b})` : `${a}（${b}）` }
/** A list joined with 、 in Chinese, with commas in English. */
export function list(xs: string[]) { return xs.join(isEn() ? ', ' : '、') }

export type Node = components['schemas']['Node']
export type Rollup = components['schemas']['NoticeRollup']

export const CHANNELS = ['inbox', 'wechat', 'sms', 'email', 'webhook'] as const
export type Channel = (typeof CHANNELS)[number]
export const CARE_TAGS = ['elderly_alone', 'empty_nest_elderly', 'disabled', 'low_income', 'veteran',
  'after_school_child', 'special_care'] as const
export const DELIVERY_STATUSES = ['held', 'queued', 'bundled', 'sent', 'delivered', 'read', 'failed', 'cancelled'] as const

/** A time as a person in Shanghai reads it. */
export function when(x: string | null | undefined, locale: string): string {
  if (!x) return '—'
  return new Date(x).toLocaleString(locale === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai' })
}

/** "account:wangli:王丽" -> "王丽（wangli）"; "token:ab12cd34:应急办" -> "应急办"; "system" -> "system". */
export function who(actor: string | null | undefined): string {
  if (!actor) return '—'
  if (actor === 'system') return i18n.global.t('notices.system')
  const parts = actor.split(':')
  if (parts[0] === 'account' && parts.length >= 3) return paren(parts.slice(2).join(':'), parts[1])
  if (parts[0] === 'token' && parts.length >= 3) return parts.slice(2).join(':')
  return parts.length > 1 ? parts.slice(1).join(':') : actor
}

/** Whether the signed-in account wrote (or last edited) this broadcast: the two-person rule refuses it approving. */
export function wroteIt(b: { created_by?: string; edited_by?: string }, username: string | undefined): boolean {
  if (!username) return false
  const mine = `account:${username}:`
  return !!(b.created_by?.startsWith(mine) || b.edited_by?.startsWith(mine))
}

/** A request id for an idempotent create: the same one on a retry of the same form. */
export function requestId(kind: string): string {
  const rnd = typeof crypto !== 'undefined' && 'randomUUID' in crypto
    ? crypto.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`
  return `console:${kind}:${rnd}`
}

// The nodes of the signed-in scope: the console's one shared list (components/nodes.ts).
export { loadNodes } from '@/components/nodes'
export function useNodes() {
  return sharedNodes().nodes
}
/** "长海一村居委会（310110012001）", or the bare code when the node is unknown. */
export function nodeName(code: string | null | undefined, list: Node[]): string {
  if (!code) return '—'
  const n = list.find((x) => x.code === code)
  return n ? paren(n.name ?? code, code) : code
}

/** Clear a form's field errors, then fill them from an API refusal (422 and the like). */
export function showFieldErrors(errors: Record<string, string>, e: unknown, keys: string[]) {
  for (const k of Object.keys(errors)) errors[k] = ''
  const fields = (e as { fields?: Record<string, string[]> } | null)?.fields
  if (!fields) return
  for (const k of keys) {
    const msgs = Object.entries(fields).filter(([f]) => f === k || f.startsWith(`${k}.`)).flatMap(([, m]) => m)
    errors[k] = msgs.join('; ')
  }
}

export const BROADCAST_STATUSES = ['draft', 'pending_approval', 'approved', 'rejected', 'sending', 'sent', 'cancelled'] as const
export type BroadcastStatus = (typeof BROADCAST_STATUSES)[number]
/** The el-tag type of a broadcast's status. */
export function statusType(s: string | undefined): 'info' | 'warning' | 'primary' | 'danger' | 'success' {
  return ({ pending_approval: 'warning', approved: 'primary', sending: 'primary', rejected: 'danger', sent: 'success' } as
    Record<string, 'warning' | 'primary' | 'danger' | 'success'>)[s ?? ''] ?? 'info'
}

/** Whether the window is phone-narrow (≤ 768 px), kept up to date. */
export function useNarrow() {
  const q = window.matchMedia('(max-width: 768px)')
  const narrow = ref(q.matches)
  const on = () => { narrow.value = q.matches }
  q.addEventListener('change', on)
  onBeforeUnmount(() => q.removeEventListener('change', on))
  return narrow
}

import './notices.css'
import { ElMessage } from 'element-plus'
/** A success toast whose text reaches AA contrast. */
export function ok(message: string) {
  ElMessage.success({ message, customClass: 'notices-ok' })
}
