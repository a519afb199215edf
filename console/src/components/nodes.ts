// The nodes (communities, grids) the signed-in account reaches: asked once, every page of them, shared by
// every page that names a community or offers one in a select, and forgotten when someone else signs in.
import { ref, watch } from 'vue'
import { api, call } from '@/api/client'
import { can, session } from '@/session'

export interface Node { code: string; name: string; level: string; parent_code: string | null }

const nodes = ref<Node[]>([])
let pending: Promise<Node[]> | null = null

watch(() => session.account?.username, () => { pending = null; nodes.value = [] })

/** Every node of the scope (cached); rejects if the API refuses, and the next call asks again. */
export function loadNodes(force = false): Promise<Node[]> {
  if (pending && !force) return pending
  if (!can('nodes:read')) return Promise.resolve([])
  const asking = (async () => {
    const all: Node[] = []
    let after: string | undefined
    for (let i = 0; i < 50; i++) {
      const page = await call(api.GET('/api/v1/nodes', { params: { query: { limit: 1000, ...(after ? { after } : {}) } } }))
      all.push(...((page.items ?? []) as Node[]))
      if (!page.next) break
      after = page.next
    }
    nodes.value = all
    return all
  })()
  pending = asking
  asking.catch(() => { if (pending === asking) pending = null })
  return asking
}

/** The nodes as a ref, with the communities, the grids (of a community) and a code's name. */
export function useNodes() {
  loadNodes().catch(() => { /* names show as codes until a later page asks again */ })
  const communities = () => nodes.value.filter((n) => n.level === 'community')
  const grids = (community?: string | null) =>
    nodes.value.filter((n) => n.level === 'grid' && (!community || n.parent_code === community))
  const nameOf = (code: string | null | undefined) => (code ? nodes.value.find((n) => n.code === code)?.name ?? code : '')
  return { nodes, communities, grids, nameOf }
}
