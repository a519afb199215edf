// Who is signed in, and what their role may do: the console offers only what the API would allow.
import { reactive } from 'vue'
import { api, call, setCsrf } from './api/client'

export interface Account {
  id: number
  username: string
  display_name: string
  role: string
  node_prefix: string
  organization_id?: number | null
  must_change_password?: boolean
}

export const session = reactive({
  loaded: false,
  account: null as Account | null,
  permissions: [] as string[],
  // The instance's own node: its code, level and name (the top of what this console reaches).
  instance: null as { code: string; level: string; name?: string | null } | null,
})

function adopt(body: any) {
  session.account = body.account
  session.permissions = body.permissions ?? []
  session.instance = body.instance ?? null
  setCsrf(body.csrf_token ?? '')
  session.loaded = true
}

/** The current session, or null when nobody is signed in. */
export async function loadSession(): Promise<Account | null> {
  const { data, response } = await api.GET('/api/v1/session', {})
  if (response.ok) adopt(data)
  else { session.account = null; session.permissions = []; session.loaded = true; setCsrf('') }
  return session.account
}

export async function signIn(username: string, password: string) {
  const body = await call(api.POST('/api/v1/session', { body: { username, password } }))
  adopt(body)
  return session.account
}

export async function signOut() {
  try { await api.DELETE('/api/v1/session', {}) } finally {
    session.account = null
    session.permissions = []
    setCsrf('')
    forgetPerson()
  }
}

/** What pages kept in this browser for the person signed in (recently opened records): not for the next
 *  person at a shared office PC. The language stays: it belongs to the machine. */
export function forgetPerson() {
  for (const key of Object.keys(localStorage)) {
    if (key.startsWith('linli.') && key !== 'linli.lang') localStorage.removeItem(key)
  }
}

/** Whether the signed-in role may do `permission` (services/gateway/auth.py PERMISSIONS). */
export function can(permission: string | undefined | null): boolean {
  return !permission || session.permissions.includes(permission)
}

/** Whether the signed-in account may open a route with this meta (its permission, and not a refused role). */
export function allowed(meta: { permission?: string; notRoles?: string[] } | undefined): boolean {
  if (!meta) return true
  if (meta.notRoles && session.account && meta.notRoles.includes(session.account.role)) return false
  return can(meta.permission)
}
