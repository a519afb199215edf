// What the points pages share: reply types, times in Shanghai, community and category names, and ids
// for requests that may be retried.
import { useNodes } from '@/components/nodes'
import './points.css'
import { computed, reactive } from 'vue'
import { useI18n } from 'vue-i18n'
import { api, call, ApiError, type components } from '@/api/client'
import { session, can } from '@/session'

type S = components['schemas']
export type PointsAccount = S['PointsAccount']
export type Category = S['Category']
export type Reward = S['Reward']
export type ServiceRecord = S['ServiceRecord']
export type Redemption = S['Redemption']
export type StatementLine = S['StatementLine']
export type BatchResult = S['RecordBatchResult']

/** An organisation's leader may log and verify records, but the service keeps accounts, redemptions
 *  and the evaluation from them (services/points/accounts.py not_for_leaders). */
export function leader(): boolean {
  return session.account?.role === 'organization_leader'
}
export function mayHandleAccounts(permission = 'points:read'): boolean {
  return can(permission) && !leader()
}

/** An instant as a person in the street reads it. */
export function useWhen() {
  const { locale } = useI18n()
  return (x?: string | null) =>
    x ? new Date(x).toLocaleString(locale.value === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai' }) : '—'
}

/** A client-chosen id, so a retried submit is answered with the first result, not a duplicate. */
export function requestId(prefix: string): string {
  const rnd = Math.random().toString(36).slice(2, 10)
  return `console-${prefix}-${Date.now().toString(36)}-${rnd}`
}

// Names of communities and categories, loaded once per page load.
const names = reactive({ categories: [] as Category[], loadedCategories: false })

export function useNames() {
  const { nodes } = useNodes()
  if (!names.loadedCategories) {
    names.loadedCategories = true
    call(api.GET('/api/v1/points/categories', { params: { query: { include_inactive: true } } }))
      .then((r) => { names.categories = (r.items ?? []) as Category[] })
      .catch(() => { names.loadedCategories = false })
  }
  const community = (code?: string | null) => (code ? nodes.value.find((n) => n.code === code)?.name ?? code : '—')
  const category = (code?: string | null) =>
    (code ? names.categories.find((c) => c.code === code)?.name ?? code : '—')
  const categories = computed(() => names.categories)
  const communities = computed(() => nodes.value.filter((n) => n.level === 'community').map((n) => ({ code: n.code, name: n.name })))
  return { community, category, categories, communities }
}

/** Per-field messages of a refusal, for el-form-item :error. */
export function fieldErrors(e: unknown, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  if (e instanceof ApiError) for (const k of keys) out[k] = e.field(k)
  return out
}

export const RECORD_STATUS = ['pending', 'posted', 'voided', 'expired', 'reversed'] as const
export const REDEMPTION_STATUS = ['pending', 'fulfilled', 'cancelled'] as const

export function statusType(s?: string): 'primary' | 'success' | 'info' | 'warning' | 'danger' {
  switch (s) {
    case 'pending': return 'warning'
    case 'posted': case 'fulfilled': case 'active': return 'success'
    case 'voided': case 'cancelled': case 'reversed': case 'frozen': return 'danger'
    default: return 'info'
  }
}

/** A cursor-paged listing: first page on reload(), further pages appended by more(). */
export function usePaged<T>(fetch: (after?: number) => Promise<{ items?: T[]; next?: number | null }>) {
  const state = reactive({ items: [] as T[], next: null as number | null, loading: false, more: false,
                           error: null as unknown, moreError: null as unknown })
  async function reload() {
    state.loading = true
    state.error = null
    try {
      const r = await fetch(undefined)
      state.items = (r.items ?? []) as any
      state.next = r.next ?? null
    } catch (e) {
      state.error = e
    } finally {
      state.loading = false
    }
  }
  async function more() {
    if (state.next == null) return
    state.more = true
    state.moreError = null
    try {
      const r = await fetch(state.next)
      state.items.push(...((r.items ?? []) as any))
      state.next = r.next ?? null
    } catch (e) {
      state.moreError = e
    } finally {
      state.more = false
    }
  }
  return { state, reload, more }
}
