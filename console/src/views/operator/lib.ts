// The operator's pages: the instance's health read into plain words (what needs attention), ages and
// times as a person reads them, and which tokens the signed-in role may revoke.
import { i18n } from '@/i18n'
import type { components } from '@/api/client'

export type InstanceState = components['schemas']['InstanceState']
export type Token = components['schemas']['Token']

const t = (key: string, values?: Record<string, unknown>) => (i18n.global.t as (k: string, v?: Record<string, unknown>) => string)(key, values ?? {})
const te = (key: string) => (i18n.global.te as (k: string) => boolean)(key)
const isEn = () => (i18n.global.locale as unknown as { value: string }).value === 'en'

/** An outbox event waiting longer than this is stuck, not in flight. */
export const STALE_SECONDS = 60

/** "45 秒", "2 分钟", "3 小时", "2 天" (rounded down); "—" for none. */
export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || seconds <= 0) return t('operator.age.none')
  const s = Math.floor(seconds)
  if (s < 60) return t('operator.age.seconds', { n: Math.max(s, 1) })
  if (s < 3600) return t('operator.age.minutes', { n: Math.floor(s / 60) })
  if (s < 86400) return t('operator.age.hours', { n: Math.floor(s / 3600) })
  return t('operator.age.days', { n: Math.floor(s / 86400) })
}

/** "3 分钟前" / "3 minutes ago", counted from `now` (the server's check time, so clocks need not agree). */
export function ago(at: string | null | undefined, now: string | null | undefined): string {
  if (!at) return ''
  const seconds = Math.round(((now ? new Date(now).getTime() : Date.now()) - new Date(at).getTime()) / 1000)
  if (seconds < 10) return t('operator.ago.now')
  const rtf = new Intl.RelativeTimeFormat(isEn() ? 'en' : 'zh-CN', { numeric: 'auto' })
  if (seconds < 60) return rtf.format(-seconds, 'second')
  if (seconds < 3600) return rtf.format(-Math.floor(seconds / 60), 'minute')
  if (seconds < 86400) return rtf.format(-Math.floor(seconds / 3600), 'hour')
  return rtf.format(-Math.floor(seconds / 86400), 'day')
}

/** A time as a person in Shanghai reads it ("—" for none). */
export function when(x: string | null | undefined): string {
  if (!x) return '—'
  return new Date(x).toLocaleString(isEn() ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai' })
}

/** A list joined with ，in Chinese, with commas in English. */
export function joined(xs: string[], sep?: string) { return xs.join(sep ?? (isEn() ? ', ' : '，')) }
function names(xs: string[]) { return xs.join(isEn() ? ', ' : '、') }

/** "积分（points）": a service's name in the console's language, with its code. */
export function serviceName(service: string | undefined): string {
  const s = service ?? ''
  const key = `operator.service.${s}`
  if (!te(key)) return s
  if (t(key).toLowerCase() === s.toLowerCase()) return t(key)
  return isEn() ? `${t(key)} (${s})` : `${t(key)}（${s}）`
}

/** The words and the el-tag type of a link's state. */
export function linkWords(state: string | null | undefined): string {
  const s = state ?? 'unknown'
  return te(`operator.link.${s}`) ? t(`operator.link.${s}`) : s
}
export function linkType(state: string | null | undefined): 'success' | 'warning' | 'danger' | 'info' {
  if (state === 'running') return 'success'
  if (state === 'starting') return 'warning'
  if (state === 'absent' || state === 'unknown' || !state) return 'info'
  return 'danger'
}

/** What needs attention, each in a few words (none: all is well), and what is only worth knowing. */
export function health(s: InstanceState): { problems: string[]; notes: string[] } {
  const problems: string[] = []
  const notes: string[] = []
  const outboxes = s.outboxes ?? []
  if (s.broker && s.broker.reachable === false) problems.push(t('operator.summary.broker'))
  const stuck = outboxes.filter((o) => (o.backlog ?? 0) > 0 && (o.oldest_seconds ?? 0) > STALE_SECONDS)
  if (stuck.length) {
    const n = outboxes.reduce((sum, o) => sum + (o.backlog ?? 0), 0)
    const oldest = Math.max(...outboxes.map((o) => o.oldest_seconds ?? 0))
    problems.push(t('operator.summary.backlog', { n, age: age(oldest) }))
  }
  const retrying = outboxes.reduce((sum, o) => sum + (o.retrying ?? 0), 0)
  if (retrying) problems.push(t('operator.summary.retrying', { n: retrying }))
  const dead = (s.dead_letters ?? []).reduce((sum, q) => sum + (q.messages ?? 0), 0)
  if (dead) problems.push(t('operator.summary.deadLetters', { n: dead }))
  if (s.broker?.reachable !== false) {
    if (s.parent_link === 'down') problems.push(t('operator.summary.parentDown'))
    else if (s.parent_link === 'starting') problems.push(t('operator.summary.parentStarting'))
    const bad = (s.links ?? []).filter((l) => l.direction === 'other' && l.status && !['running', 'starting'].includes(l.status))
    if (bad.length) problems.push(t('operator.summary.linkError', { names: names(bad.map((l) => `${l.upstream ?? ''}/${l.exchange ?? ''}`)) }))
  }
  const children = s.children ?? []
  const label = (c: { code?: string; name?: string | null }) => c.name || c.code || ''
  const down = children.filter((c) => c.link === 'down' || c.link === 'absent')
  if (down.length) problems.push(t('operator.summary.childDown', { names: names(down.map(label)) }))
  const starting = children.filter((c) => c.link === 'starting')
  if (starting.length) problems.push(t('operator.summary.childStarting', { names: names(starting.map(label)) }))
  const badKey = children.filter((c) => !c.key_fingerprint)
  if (badKey.length) problems.push(t('operator.summary.childKey', { names: names(badKey.map(label)) }))
  if (!s.key_fingerprint) problems.push(t('operator.summary.noKey'))
  const pending = (s.migrations ?? []).reduce((sum, m) => sum + (m.pending?.length ?? 0) + (m.problem ? 1 : 0), 0)
  if (pending) problems.push(t('operator.summary.pending', { n: pending }))
  const unrouted = (s.unrouted ?? []).reduce((sum, q) => sum + (q.messages ?? 0), 0)
  if (unrouted) notes.push(t('operator.summary.unrouted', { n: unrouted }))
  return { problems, notes }
}

// A street admin revokes the tokens of the roles the console manages, the departments' feeds and residents'
// own; an admin's or operator's token is an operator's to revoke (services/gateway/operations.py ADMIN_REVOKES).
const STREET_ADMIN_REVOKES = ['community_worker', 'organization_leader', 'district_analyst', 'department_feed', 'resident']
/** Whether the signed-in role may revoke this token (the API would refuse it otherwise). */
export function mayRevoke(callerRole: string | undefined, token: Token): boolean {
  if (token.state !== 'active') return false
  if (callerRole === 'operator') return true
  return STREET_ADMIN_REVOKES.includes(token.role ?? '')
}
