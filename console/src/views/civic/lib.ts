// What the civic pages share (party members, organisations and teams, community workers): reply types
// (the generated ones mark every field optional), the enums of services/registry/schemas.py, the
// communities of the signed-in scope, dates in Shanghai and form errors from a 422.
import { onBeforeUnmount, reactive, ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { api, call, ApiError } from '@/api/client'
import { can } from '@/session'

// -- replies -------------------------------------------------------------------------------------
export interface Change {
  version: number; change: string; effective: string; detail: Record<string, unknown>; actor: string | null
  changed_at: string
}
export interface PartyOrgRef { id: number; kind: string; name: string }
export interface PartyMember {
  resident_id: number; name: string; sex: string; age: number; community_code: string; grid_code: string | null
  category: string; membership_org: string; joined_party: string; report_status: string; reported_on: string | null
  posts: string[]; withdrawn_on: string | null; party_org: PartyOrgRef | null; version: number
}
export interface PartyMemberDetail extends PartyMember { history: Change[] }
export interface PartyMemberPage { items: PartyMember[]; next: number | null }
export interface PartyOrg {
  id: number; community_code: string; kind: string; name: string; parent_id: number | null; building: string | null
  members: number; children: PartyOrg[]
}
export interface PartyOrgTree { community_code: string; name: string; committee: PartyOrg | null }
export interface ReportRateRow { community_code: string; name: string; members: number; reported: number; rate: number | null }
export interface ReportRate { under: string; communities: ReportRateRow[]; total: { members: number; reported: number; rate: number | null } }

export interface Organization {
  id: number; name: string; category: string; subcategory: string | null; status: string; status_on: string
  community_code: string; leader_resident_id: number | null; activities: string[]; founded_on: string
  filing_no: string | null; member_count: number; version: number
}
export interface OrganizationMember {
  organization_id: number; resident_id: number; name: string | null; community_code: string; role: string
  joined_on: string; left_on: string | null
}
export interface Project {
  id: number; organization_id: number; name: string; funder: string; budget: string; starts_on: string; ends_on: string
}
export interface OrganizationDetail extends Organization {
  leader_name: string | null; members: OrganizationMember[]; projects: Project[]; history: Change[]
}
export interface OrganizationPage { items: Organization[]; next: number | null }

export interface Worker {
  id: number; name: string; id_number: string; phone: string | null; resident_id: number | null; role: string
  community_code: string; grid_code: string | null; origin: string; started_on: string; status: string
  left_on: string | null; left_reason: string | null; version: number
}
export interface Assessment { year: number; score: string; outcome: string; assessed_on: string; note: string | null; actor: string | null }
export interface WorkerDetail extends Worker { assessments: Assessment[]; history: Change[] }
export interface WorkerPage { items: Worker[]; next: number | null }

export interface ResidentHit {
  id: number; name: string; sex: string; age: number; community_code: string; id_number: string
  household: { address: string | null } | null
}

// -- enums (labels in locales/civic.ts) ----------------------------------------------------------
export const PARTY_CATEGORIES = ['on_the_job', 'retired', 'mobile', 'student'] as const
export const REPORT_STATUSES = ['unreported', 'reported', 'withdrawn'] as const
export const POSTS = ['building_liaison', 'security_patrol', 'environment', 'policy_outreach', 'care_visits',
  'civility', 'consultation', 'volunteer'] as const
export const ORG_CATEGORIES = ['interest_culture', 'public_service', 'party_building', 'online_community',
  'volunteer_team'] as const
export const TEAM_TYPES = ['security_patrol', 'civility_patrol', 'elderly_care', 'environment', 'emergency_rescue',
  'mediation'] as const
export const ACTIVITIES = ['elderly_care', 'children_youth', 'culture_sports', 'public_safety', 'civility',
  'environment', 'mediation', 'health', 'disability', 'assistance', 'education', 'governance', 'party_building'] as const
export const ORG_STATUSES = ['filed', 'active', 'suspended', 'dissolved'] as const
// filed → active ⇄ suspended; any → dissolved (final): civic_rules.TRANSITIONS
export const ORG_TRANSITIONS: Record<string, readonly OrgStatus[]> = {
  filed: ['active', 'dissolved'], active: ['suspended', 'dissolved'], suspended: ['active', 'dissolved'], dissolved: [],
}
// A suspended or dissolved organisation takes no new members or projects.
export const WORKING_STATUSES = ['filed', 'active']
export const MEMBER_ROLES = ['member', 'deputy'] as const
export const WORKER_ROLES = ['secretary', 'director', 'member', 'grid_worker'] as const
export const ORIGINS = ['kept_on', 'recruited', 'seconded'] as const
export const WORKER_STATUSES = ['active', 'left', 'all'] as const
export const OUTCOMES = ['kept', 'improved', 'let_go'] as const
export const LEAVE_REASONS = ['resigned', 'retired', 'transferred', 'dismissed', 'other'] as const
export type PartyCategory = typeof PARTY_CATEGORIES[number]
export type ReportStatus = typeof REPORT_STATUSES[number]
export type Post = typeof POSTS[number]
export type OrgCategory = typeof ORG_CATEGORIES[number]
export type Activity = typeof ACTIVITIES[number]
export type OrgStatus = typeof ORG_STATUSES[number]
export type MemberRole = typeof MEMBER_ROLES[number]
export type WorkerRole = typeof WORKER_ROLES[number]
export type Origin = typeof ORIGINS[number]
export type WorkerStatus = typeof WORKER_STATUSES[number]
export type Outcome = typeof OUTCOMES[number]
export type LeaveReason = typeof LEAVE_REASONS[number]

// -- the communities and grids of the scope --------------------------------------------------------
export { useNodes, type Node } from '@/components/nodes'

// -- dates ---------------------------------------------------------------------------------------
/** A moment as a person in Shanghai reads it; a plain day (YYYY-MM-DD) as it is. */
export function when(value: string | null | undefined, lang: string): string {
  if (!value) return ''
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return value
  return new Date(value).toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN', { timeZone: 'Asia/Shanghai' })
}

/** Today in Shanghai as YYYY-MM-DD. */
export function today(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai' }).format(new Date())
}

/** A rate (0..1) as a whole percentage, or null. */
export function percent(rate: number | null | undefined): number | null {
  return rate === null || rate === undefined ? null : Math.round(rate * 1000) / 10
}

// -- forms ---------------------------------------------------------------------------------------
/** Field errors of a form, filled from a 422 and cleared before each submission. */
export function useFieldErrors(fields: readonly string[]) {
  const errors = reactive<Record<string, string>>(Object.fromEntries(fields.map((f) => [f, ''])))
  function clear() { for (const k of Object.keys(errors)) errors[k] = '' }
  /** Fill from an ApiError; answers the messages of fields the form does not show (to list in the alert). */
  function fill(e: unknown): string[] {
    clear()
    if (!(e instanceof ApiError)) return []
    const rest: string[] = []
    for (const [name, messages] of Object.entries(e.fields)) {
      const key = name.split('.')[0]
      if (key in errors) errors[key] = [errors[key], ...messages].filter(Boolean).join('; ')
      else rest.push(`${name}: ${messages.join('; ')}`)
    }
    return rest
  }
  return { errors, clear, fill }
}

/** Drop empty strings, nulls and empty lists so optional fields are sent absent rather than blank. */
export function compact<T extends Record<string, unknown>>(o: T): T {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(o)) {
    if (v === '' || v === null || v === undefined) continue
    if (Array.isArray(v) && !v.length) continue
    out[k] = typeof v === 'string' ? v.trim() : v
  }
  return out as T
}

/** A one-line summary of a history entry's detail ({key: value} pairs), for the history table. */
export function detailText(detail: Record<string, unknown>, label: (key: string, value: unknown) => string): string {
  return Object.entries(detail ?? {})
    .filter(([, v]) => v !== null && v !== undefined && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => label(k, v))
    .join('；')
}

/** The branches and building groups of a community (where a party member may sit), flattened. */
export async function placeablePartyOrgs(community: string): Promise<PartyOrg[]> {
  const tree = await call(api.GET('/api/v1/party-orgs', { params: { query: { community_code: community } } })) as PartyOrgTree
  const out: PartyOrg[] = []
  const walk = (o: PartyOrg | null, depth: number) => {
    if (!o) return
    if (o.kind !== 'committee') out.push({ ...o, name: (depth > 1 ? '　' : '') + o.name })
    for (const c of o.children ?? []) walk(c, depth + 1)
  }
  walk(tree.committee, 0)
  return out
}

export type TagType = 'success' | 'warning' | 'info' | 'danger' | 'primary'
export const orgStatusType = (s: string): TagType =>
  ({ active: 'success', filed: 'primary', suspended: 'warning', dissolved: 'info' } as Record<string, TagType>)[s] ?? 'info'

/** The label of an enum value ('' for none, the code itself when unknown): L('orgStatus', 'active'). */
export function useLabel() {
  const { t, te } = useI18n()
  return (ns: string, v: string | null | undefined) => (!v ? '' : te(`civic.${ns}.${v}`) ? t(`civic.${ns}.${v}`) : v)
}

/** Who recorded a change: "account:wangli:王丽" reads as "王丽（wangli）"; other actors as they are. */
export function actorName(actor: string | null | undefined): string {
  if (!actor) return ''
  const m = /^account:([^:]+):(.+)$/.exec(actor)
  return m ? `${m[2]}（${m[1]}）` : actor
}

/** Whether the screen is phone-narrow (≤ 768px), kept up to date: details drop to one column. */
export function useNarrow() {
  const query = window.matchMedia('(max-width: 768px)')
  const narrow = ref(query.matches)
  const update = () => { narrow.value = query.matches }
  query.addEventListener('change', update)
  onBeforeUnmount(() => query.removeEventListener('change', update))
  return narrow
}
