#!/usr/bin/env node
// Differential test: aws/policy.c (through policy_eval) against
// @cloud-copilot/iam-simulate on seeded random policy/request pairs.
//
//   node diff.js --tool build/tests/oracle/policy_eval [--cases 3000] [--ecs-cases 1000] [--seed N] [--show 10]
//
// --cases: the Secrets Manager / SSM / KMS cases (randomCase); --ecs-cases:
// the ECS API's questions (randomEcsCase: ECS actions and iam:PassRole),
// followed by the listed ECS cases (ecsListedCases), which also carry the
// decision AWS documents for them.
//
// Prints "N agree, M differ" and exits 1 when anything differs or either side
// reports an error. The generator stays inside the ground both tools model
// the same way; the places where iam-simulate knowingly differs from IAM (and
// from us) are listed in KNOWN_QUIRKS and avoided by construction, not
// filtered after the fact.
'use strict'

const { spawnSync } = require('node:child_process')
const path = require('node:path')

// Known iam-simulate behaviours we do not copy (see tests/oracle/README.md):
// avoided by construction (the generator never produces them):
const KNOWN_QUIRKS = [
  'epoch seconds compared with ISO dates: iam-simulate takes an all-digit date as milliseconds',
  'a wildcard inside the resource-type prefix (before the first "/" or ":" of the resource part) is literal in iam-simulate',
  'context keys not listed for the action (e.g. kms:EncryptionContext:<key>) are silently dropped by iam-simulate',
  'Version 2008-10-17: iam-simulate substitutes policy variables, IAM treats ${...} as literal text (only variable-free 2008 documents are generated)',
  'ForAnyValue:...IfExists on a missing key: iam-simulate ignores IfExists under a set operator (false); we apply IAM\'s IfExists rule (true). Set operators are generated without IfExists'
]
// generated on purpose, and recognised by rewriting the policies into a form
// that is equivalent for our evaluator; a difference counts as explained only
// when the rewrite makes iam-simulate agree AND leaves our answer unchanged
// (both are checked by running the rewritten case through both tools):
const REWRITE_QUIRKS = [
  {
    name: 'ipv4-slash-0',
    what: 'IPv4 "/0" CIDR: iam-simulate computes the mask as -1 << 32, which JavaScript reduces to -1 << 0, so 0.0.0.0/0 matches only 0.0.0.0 (IAM: every IPv4 address)',
    rewrite: (v) => (v === '0.0.0.0/0' ? ['0.0.0.0/1', '128.0.0.0/1'] : [v])
  },
  {
    name: 'bare-ip-other-family',
    what: 'a bare IPv4 address (no /n) in NotIpAddress against an IPv6 source: iam-simulate answers false, although it answers true for the same address written as /32 (IAM: an IPv6 address is never inside an IPv4 range)',
    rewrite: (v) => (/^\d+\.\d+\.\d+\.\d+$/.test(v) ? [v + '/32'] : [v])
  },
  {
    name: 'notresource-unresolved-variable',
    what: 'model difference, not a bug: a NotResource value whose variable cannot be resolved. We call it a plain mismatch when the value could not match whatever the variable held (literal parts already differ), and make the statement not apply otherwise; iam-simulate makes the statement not apply unless the mismatch lies before its resource-id split (partition..account or the resource-type prefix). Rewrite: such variables become "*", which leaves our answer unchanged in both sub-cases',
    rewriteCase: (c) => {
      const known = new Set(
        Object.entries(c.ctx)
          .filter(([, v]) => typeof v === 'string' && v !== '')
          .map(([k]) => k.toLowerCase())
      )
      const fix = (v) =>
        v.replace(/\$\{([^}]*)\}/g, (m, inner) => {
          if (inner === '*' || inner === '?' || inner === '$') return m
          const parts = inner.split(', ')
          if (parts.length === 2 && /^'.+'$/.test(parts[1])) return m
          return known.has(parts[0].trim().toLowerCase()) ? m : '*'
        })
      const pol = (p) => {
        if (!p) return p
        const q = JSON.parse(JSON.stringify(p))
        for (const st of [].concat(q.Statement))
          if (st.NotResource !== undefined)
            st.NotResource = Array.isArray(st.NotResource) ? st.NotResource.map(fix) : fix(st.NotResource)
        return q
      }
      return { ...c, identity: c.identity.map(pol), boundary: c.boundary.map(pol), resourcePolicy: pol(c.resourcePolicy) }
    }
  },
  {
    name: 'request-resource-star',
    what: 'model difference: the ECS API asks ecs:ListTasks and ecs:RegisterTaskDefinition on the literal resource "*". Their service reference lists a resource type (container-instance, task-definition), and for such actions iam-simulate reads a "*" request resource as a pattern over every resource of that type (its what-if mode): an Allow on a narrower ARN matches it, a Deny with NotResource naming a narrower ARN does not. IAM matches the request resource as given, so "*" is matched only by a Resource of "*" and by every NotResource without "*" (iam-simulate does the same for wildcard-only actions such as ecs:ListClusters). Rewrite: a Resource without "*" or a NotResource with "*" cannot apply to "*", the statement becomes one for s3:GetObject; a NotResource without "*" always applies, it becomes Resource "*"',
    rewriteCase: (c) => {
      if (c.resource !== '*') return c
      const pol = (p) => {
        if (!p) return p
        const q = JSON.parse(JSON.stringify(p))
        const fix = (st) => {
          const { Resource, NotResource, ...rest } = st
          const star = [].concat(Resource !== undefined ? Resource : NotResource).includes('*')
          if (Resource !== undefined ? star : !star) return { ...rest, Resource: '*' }
          delete rest.Action
          delete rest.NotAction
          return { ...rest, Action: 's3:GetObject', Resource: '*' }
        }
        q.Statement = Array.isArray(q.Statement) ? q.Statement.map(fix) : fix(q.Statement)
        return q
      }
      return { ...c, identity: c.identity.map(pol), boundary: c.boundary.map(pol), resourcePolicy: pol(c.resourcePolicy) }
    }
  }
]

function rewritePolicy(p, rw) {
  if (!p) return p
  const q = JSON.parse(JSON.stringify(p))
  for (const st of [].concat(q.Statement)) {
    if (!st.Condition) continue
    for (const [op, keys] of Object.entries(st.Condition)) {
      if (!/ipaddress/i.test(op)) continue
      for (const k of Object.keys(keys)) keys[k] = [].concat(keys[k]).flatMap(rw)
    }
  }
  return q
}

function rewriteCase(c, rw) {
  return {
    ...c,
    identity: c.identity.map((p) => rewritePolicy(p, rw)),
    boundary: c.boundary.map((p) => rewritePolicy(p, rw)),
    resourcePolicy: rewritePolicy(c.resourcePolicy, rw)
  }
}

function args() {
  const a = { cases: 3000, 'ecs-cases': 1000, seed: 1, show: 10, tool: null }
  const v = process.argv.slice(2)
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '')
    a[k] = k === 'tool' ? v[i + 1] : Number(v[i + 1])
  }
  if (!a.tool) {
    console.error('usage: diff.js --tool PATH [--cases N] [--ecs-cases N] [--seed N] [--show N]')
    process.exit(2)
  }
  return a
}

// mulberry32: small, seedable, good enough for test generation
function rng(seed) {
  let s = seed >>> 0
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const r = {
    next,
    chance: (p) => next() < p,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    some: (arr, lo, hi) => {
      const n = r.int(lo, hi)
      const out = []
      for (let i = 0; i < n; i++) out.push(r.pick(arr))
      return out
    }
  }
  return r
}

const A1 = '111111111111'
const A2 = '222222222222'
const REGIONS = ['us-east-1', 'eu-west-1']
const KEY_ID = '1234abcd-12ab-34cd-56ef-1234567890ab'

function randomCase(r) {
  const pacct = r.pick([A1, A2])
  const racct = r.chance(0.6) ? pacct : pacct === A1 ? A2 : A1
  const region = r.pick(REGIONS)
  const kind = r.pick(['session', 'session', 'user', 'role', 'federated', 'service'])
  const roleArn = `arn:aws:iam::${pacct}:role/ecsTaskExecutionRole`
  const principal = {
    session: `arn:aws:sts::${pacct}:assumed-role/ecsTaskExecutionRole/task-42`,
    user: `arn:aws:iam::${pacct}:user/alice`,
    role: roleArn,
    federated: `arn:aws:sts::${pacct}:federated-user/alice`,
    service: 'ecs-tasks.amazonaws.com'
  }[kind]
  const svc = r.pick(['ssm', 'secretsmanager', 'kms'])
  let action, resource
  const pname = r.pick(['prod/db_password', 'test/database_password', 'alice/key', 'platform/token'])
  if (svc === 'ssm') {
    action = r.pick(['ssm:GetParameters', 'ssm:GetParameter'])
    resource = `arn:aws:ssm:${region}:${racct}:parameter/${pname}`
  } else if (svc === 'secretsmanager') {
    action = r.pick(['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'])
    resource = `arn:aws:secretsmanager:${region}:${racct}:secret:${pname}-AbCdEf`
  } else {
    action = r.pick(['kms:Decrypt', 'kms:GenerateDataKey'])
    resource = `arn:aws:kms:${region}:${racct}:key/${KEY_ID}`
  }

  // request context, before filtering to the keys valid for the action
  const ctx = {}
  const maybe = (k, v) => {
    if (r.chance(0.65)) ctx[k] = v
  }
  maybe('aws:SourceIp', r.pick(['10.0.0.5', '192.168.1.20', '203.0.113.9', '2001:db8::1', '2001:db9::5']))
  maybe('aws:CurrentTime', r.pick(['2024-01-15T10:00:00Z', '2025-06-30T23:59:59Z', '2026-11-29T12:00:00Z']))
  maybe('aws:EpochTime', r.pick(['1700000000', '1750000000', '1800000000']))
  maybe('aws:SecureTransport', r.pick(['true', 'false', 'True']))
  if (kind !== 'service') {
    maybe('aws:PrincipalArn', kind === 'session' ? roleArn : principal)
    maybe('aws:PrincipalAccount', pacct)
  }
  if (kind === 'user' || kind === 'federated') maybe('aws:username', 'alice')
  maybe('aws:PrincipalTag/team', r.pick(['platform', 'data', 'Platform', 'prod']))
  maybe('aws:RequestedRegion', region)
  maybe('aws:MultiFactorAuthAge', r.pick(['0', '300', '3600', '7200.5']))
  maybe('aws:PrincipalServiceNamesList', r.some(['ecs-tasks.amazonaws.com', 'ec2.amazonaws.com', 'lambda.amazonaws.com'], 0, 2))
  maybe('aws:TagKeys', r.some(['team', 'env', 'Owner'], 0, 3))
  maybe('kms:EncryptionContextKeys', r.some(['app', 'aws:ssm:parameterName', 'SecretARN'], 0, 2))
  maybe('kms:CallerAccount', pacct)
  maybe('kms:ViaService', r.pick([`ssm.${region}.amazonaws.com`, `secretsmanager.${region}.amazonaws.com`]))
  maybe('secretsmanager:VersionStage', r.pick(['AWSCURRENT', 'AWSPREVIOUS', 'awscurrent']))
  maybe('secretsmanager:SecretId', resource)

  const ctxArn = `arn:aws:${svc}:${region}:${racct}:`
  const resourcePatterns = [
    '*',
    '*',
    resource,
    resource,
    resource,
    resource,
    `arn:aws:ssm:*:${racct}:parameter/prod/*`,
    `arn:aws:ssm:${region}:*:parameter/*`,
    'arn:aws:ssm:us-east-?:*:parameter/test/database_passwor?',
    'arn:aws:secretsmanager:*:*:secret:prod/*',
    `arn:aws:secretsmanager:${region}:${racct}:secret:*`,
    `arn:aws:kms:*:${racct}:key/*`,
    `arn:aws:kms:${region}:*:key/${KEY_ID}`,
    `arn:aws:KMS:${region.toUpperCase()}:*:key/${KEY_ID}`,
    `${ctxArn}parameter/\${aws:username}/*`,
    `${ctxArn}secret:\${aws:PrincipalTag/team}/*`,
    `${ctxArn}parameter/\${aws:PrincipalTag/team, 'platform'}/*`,
    `arn:aws:*:*:${racct}:*`,
    `arn:aws:ssm:*:*:parameter/PROD/*`,
    'arn:aws:ssm:*:*:parameter/*/db_*',
    'arn:aws:secretsmanager:*:*:secret:*-AbCdEf',
    `arn:aws:secretsmanager:${region}:${racct}:secret:*/\${aws:username}*`,
    'arn:aws:kms:*:*:key/*-*-*-*-????????????',
    `arn:aws:ssm:${region}:${racct}:parameter/\${aws:PrincipalTag/team}/token`
  ]
  const actionPatterns = [
    action,
    action,
    action,
    action.toLowerCase(),
    'ssm:Get*',
    'ssm:GetParameter?',
    'secretsmanager:*',
    'secretsmanager:GetSecret*',
    'kms:De*',
    'kms:Decrypt',
    'kms:Generate*',
    '*',
    's3:GetObject',
    'ssm:*Parameters'
  ]
  const condition = () => {
    const c = {}
    const add = (op, key, values) => {
      if (!c[op]) c[op] = {}
      c[op][key] = values.length === 1 && r.chance(0.5) ? values[0] : values
    }
    const ifx = () => (r.chance(0.2) ? 'IfExists' : '')
    const n = r.int(1, 3)
    for (let i = 0; i < n; i++) {
      switch (r.int(0, 14)) {
        case 0:
          add(
            r.pick(['StringEquals', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotEqualsIgnoreCase', 'StringLike', 'StringNotLike']) + ifx(),
            r.pick(['aws:PrincipalTag/team', 'aws:username', 'aws:RequestedRegion', 'secretsmanager:VersionStage', 'kms:ViaService']),
            r.some(['platform', 'data', 'PLATFORM', 'plat*', '*', 'us-east-1', 'eu-*', 'AWSCURRENT', 'awsc?rrent', '${aws:PrincipalTag/team}', 'ssm.*.amazonaws.com', 'alice', '${aws:username}', '${*}'], 1, 3)
          )
          break
        case 1:
          add(
            r.pick(['ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'StringEquals', 'StringLike']) + ifx(),
            r.pick(['aws:PrincipalArn', 'secretsmanager:SecretId']),
            r.some([`arn:aws:iam::${pacct}:role/ecsTaskExecutionRole`, `arn:aws:iam::*:role/ecs*`, `arn:aws:iam::${A2}:*`, `arn:aws:iam::*:user/\${aws:username}`, 'arn:aws:secretsmanager:*:*:secret:prod/*', resource], 1, 2)
          )
          break
        case 2:
          add(r.pick(['IpAddress', 'NotIpAddress']) + ifx(), 'aws:SourceIp', r.some(['10.0.0.0/8', '192.168.1.0/24', '203.0.113.9/32', '2001:db8::/32', '0.0.0.0/0', '203.0.113.9'], 1, 2))
          break
        case 3:
          add(
            r.pick(['DateEquals', 'DateNotEquals', 'DateLessThan', 'DateLessThanEquals', 'DateGreaterThan', 'DateGreaterThanEquals']) + ifx(),
            'aws:CurrentTime',
            r.some(['2025-01-01T00:00:00Z', '2025-06-30T23:59:59Z', '2026-01-01T00:00:00Z', '2024-01-15T10:00:00Z'], 1, 2)
          )
          break
        case 4:
          add(r.pick(['DateLessThan', 'DateGreaterThanEquals', 'DateEquals']) + ifx(), 'aws:EpochTime', r.some(['1700000000', '1750000000', '1760000000'], 1, 2))
          break
        case 5:
          add(
            r.pick(['NumericEquals', 'NumericNotEquals', 'NumericLessThan', 'NumericLessThanEquals', 'NumericGreaterThan', 'NumericGreaterThanEquals']) + ifx(),
            'aws:MultiFactorAuthAge',
            r.some(['0', '300', '3600', '7200.5', '5000'], 1, 2)
          )
          break
        case 6:
          add('Bool' + ifx(), 'aws:SecureTransport', [r.pick(['true', 'false', 'TRUE'])])
          break
        case 7:
          add('Null', r.pick(['aws:username', 'aws:PrincipalTag/team', 'aws:SourceIp', 'kms:EncryptionContextKeys', 'aws:TagKeys']), [r.pick(['true', 'false'])])
          break
        case 8:
        case 9:
          add(
            r.pick(['ForAnyValue:', 'ForAllValues:']) + r.pick(['StringEquals', 'StringLike', 'StringNotEquals', 'StringEqualsIgnoreCase', 'StringNotLike']),
            r.pick(['aws:PrincipalServiceNamesList', 'aws:TagKeys', 'kms:EncryptionContextKeys']),
            r.some(['ecs-tasks.amazonaws.com', '*.amazonaws.com', 'team', 'env', 'owner', 'app', 'aws:ssm:*', 'SecretARN'], 1, 3)
          )
          break
        case 10:
          add(r.pick(['StringEquals', 'StringNotEquals']), r.pick(['aws:PrincipalAccount', 'kms:CallerAccount']), r.some([A1, A2], 1, 2))
          break
        case 11:
          add(r.pick(['StringLike', 'StringEquals']), 'aws:RequestedRegion', [r.pick(['${aws:RequestedRegion}', "${aws:Nope, 'us-east-1'}", '${aws:Missing}', 'us-*'])])
          break
        case 12:
          add(
            r.pick(['DateGreaterThan', 'DateLessThanEquals', 'DateEquals']) + ifx(),
            'aws:CurrentTime',
            r.some(['2025-06-30', '2025-07-01T00:59:59+01:00', '2024-01-15T10:00:00.000Z', '2026-11-29T13:00:00+01:00'], 1, 2)
          )
          break
        case 13:
          add(r.pick(['NumericEquals', 'NumericLessThan', 'NumericGreaterThanEquals']) + ifx(), 'aws:MultiFactorAuthAge', r.some([300, 3600, 7200.5, '300.0'], 1, 2))
          break
        case 14:
          add('Null', r.pick(['aws:PrincipalArn', 'aws:username', 'aws:MultiFactorAuthAge']), r.some(['true', 'false'], 1, 2))
          break
      }
    }
    return c
  }
  const statement = (isResource, index) => {
    const s = {}
    if (r.chance(0.3)) s.Sid = 'S' + index // unique within the policy, as IAM requires
    s.Effect = r.chance(0.8) ? 'Allow' : 'Deny'
    const acts = r.some(actionPatterns, 1, 3)
    if (r.chance(0.15)) s.NotAction = acts.length === 1 ? acts[0] : acts
    else s.Action = acts.length === 1 ? acts[0] : acts
    if (isResource) {
      const principals = [
        '*',
        { AWS: `arn:aws:iam::${pacct}:root` },
        { AWS: pacct },
        { AWS: roleArn },
        kind === 'service' ? { Service: principal } : { AWS: principal },
        { AWS: `arn:aws:iam::${pacct}:user/alice` },
        { AWS: [`arn:aws:iam::${A2}:root`, `arn:aws:iam::${A1}:role/other`] },
        { Service: 'ecs-tasks.amazonaws.com' },
        { AWS: `arn:aws:iam::${racct}:root` },
        { AWS: `arn:aws:sts::${pacct}:assumed-role/ecsTaskExecutionRole/task-42` },
        { AWS: `arn:aws:iam::${pacct}:role/path/ecsTaskExecutionRole` },
        { AWS: [`arn:aws:iam::${pacct}:user/alice`, A2], Service: ['ecs-tasks.amazonaws.com', 'ssm.amazonaws.com'] },
        { AWS: '*' }
      ]
      if (s.Effect === 'Deny' && r.chance(0.1)) s.NotPrincipal = r.pick(principals.slice(1))
      else s.Principal = r.pick(principals)
    }
    const res = r.some(resourcePatterns, 1, 3)
    if (r.chance(0.12)) s.NotResource = res.length === 1 ? res[0] : res
    else s.Resource = res.length === 1 ? res[0] : res
    if (r.chance(0.4)) s.Condition = condition()
    return s
  }
  const policy = (isResource, lo, hi) => {
    const st = []
    const n = r.int(lo, hi)
    for (let i = 0; i < n; i++) st.push(statement(isResource, i))
    const doc = { Version: '2012-10-17', Statement: st.length === 1 && r.chance(0.3) ? st[0] : st }
    if (!JSON.stringify(doc).includes('${') && r.chance(0.15)) doc.Version = '2008-10-17'
    return doc
  }
  const identity = []
  const nid = r.int(0, 3)
  for (let i = 0; i < nid; i++) identity.push(policy(false, 1, 4))
  const boundary = r.chance(0.35) ? [policy(false, 1, 3)] : []
  let resourcePolicy = null
  if (svc === 'kms' ? r.chance(0.85) : svc === 'secretsmanager' && r.chance(0.5)) {
    resourcePolicy = policy(true, 1, 3)
    if (svc === 'kms' && r.chance(0.5)) {
      // the default key policy: delegate to the key account's IAM
      const st = [].concat(resourcePolicy.Statement)
      st.unshift({ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${racct}:root` }, Action: 'kms:*', Resource: '*' })
      resourcePolicy.Statement = st
    }
  }
  return { identity, boundary, resourcePolicy, principal, action, resource, racct, ctx }
}

// ---- The ECS API's questions (issue 17) ----
// The agent's ECS API authorises every ECS action with the caller's
// policies, as ECS does, and asks iam:PassRole for every role a request hands
// to a task. These cases are the requests it evaluates: one account, the
// agent's region, an assumed-role session or the account root as caller, the
// ECS resource ARN (or "*") and the condition keys ECS gives the action
// (ecs:cluster, ecs:task-definition, iam:PassedToService), plus the global
// keys aws/local/authz.c always supplies. They come from their own random
// stream (ecsSeed), so the cases of randomCase stay what they were.
const ECS_ACCT = '123456789012'
const ECS_REGIONS = ['us-east-1', 'us-east-2']
const ECS_NOW = '2026-11-29T12:00:00Z'
const ECS_TASK_ID = '0f1e2d3c4b5a69788796a5b4c3d2e1f0'
const PASSED_TO = 'ecs-tasks.amazonaws.com' // agent/api/api.h AG_API_PASSED_TO_SERVICE
// the identity policy aws/local/authz.c gives the account root
const ALLOW_ALL = { Version: '2012-10-17', Statement: [{ Sid: 'AccountRoot', Effect: 'Allow', Action: '*', Resource: '*' }] }

function ecsSeed(seed) {
  return (seed ^ 0x0ec5c0de) >>> 0
}

// the request the agent evaluates, with the context authz.c builds for it
function ecsRequest(o) {
  const A = ECS_ACCT
  const root = o.who === 'root'
  const principal = root ? `arn:aws:iam::${A}:root` : `arn:aws:sts::${A}:assumed-role/${o.who}/${o.session || 'cli'}`
  const ctx = {
    'aws:PrincipalArn': root ? principal : `arn:aws:iam::${A}:role/${o.who}`,
    'aws:PrincipalAccount': A,
    'aws:PrincipalType': root ? 'Account' : 'AssumedRole',
    'aws:userid': root ? A : `AROAEXAMPLEROLEID:${o.session || 'cli'}`,
    'aws:CurrentTime': ECS_NOW,
    'aws:EpochTime': String(Date.parse(ECS_NOW) / 1000),
    'aws:RequestedRegion': o.region,
    ...o.ctx
  }
  return { principal, action: o.action, resource: o.resource, racct: A, ctx }
}

function ecsArns(region, cluster, family, rev) {
  const p = `arn:aws:ecs:${region}:${ECS_ACCT}:`
  return {
    cluster: `${p}cluster/${cluster}`,
    td: `${p}task-definition/${family}:${rev}`,
    task: `${p}task/${cluster}/${ECS_TASK_ID}`,
    service: (name) => `${p}service/${cluster}/${name}`,
    role: (name) => `arn:aws:iam::${ECS_ACCT}:role/${name}`
  }
}

function randomEcsCase(r) {
  const A = ECS_ACCT
  const region = r.pick(ECS_REGIONS)
  const other = region === 'us-east-1' ? 'us-east-2' : 'us-east-1'
  const who = r.pick(['deployer', 'deployer', 'deployer', 'ci-runner', 'ci-runner', 'root'])
  const clusterName = r.pick(['main', 'main', 'prod-east'])
  const family = r.pick(['app', 'app', 'app-worker', 'web'])
  const arn = ecsArns(region, clusterName, family, r.pick([1, 3, 12]))
  const inCluster = { 'ecs:cluster': arn.cluster }
  let action, resource, ctx
  switch (r.pick(['run', 'run', 'task', 'list', 'service', 'service-ro', 'td', 'cluster', 'pass', 'pass', 'pass'])) {
    case 'run':
      ;[action, resource, ctx] = [r.pick(['ecs:RunTask', 'ecs:StartTask']), arn.td, inCluster]
      break
    case 'task':
      ;[action, resource, ctx] = [r.pick(['ecs:StopTask', 'ecs:DescribeTasks']), arn.task, inCluster]
      break
    case 'list':
      ;[action, resource, ctx] = [r.pick(['ecs:ListTasks', 'ecs:ListServices']), '*', inCluster]
      break
    case 'service':
      action = r.pick(['ecs:CreateService', 'ecs:UpdateService'])
      resource = arn.service(r.pick(['web', 'api']))
      ctx = { ...inCluster, 'ecs:task-definition': arn.td }
      break
    case 'service-ro':
      ;[action, resource, ctx] = [r.pick(['ecs:DeleteService', 'ecs:DescribeServices']), arn.service(r.pick(['web', 'api'])), inCluster]
      break
    case 'td':
      action = r.pick(['ecs:RegisterTaskDefinition', 'ecs:DescribeTaskDefinition', 'ecs:DeregisterTaskDefinition', 'ecs:ListTaskDefinitions', 'ecs:ListTaskDefinitionFamilies', 'ecs:ListClusters'])
      ;[resource, ctx] = ['*', {}]
      break
    case 'cluster':
      ;[action, resource, ctx] = ['ecs:DescribeClusters', arn.cluster, {}]
      break
    case 'pass':
      action = 'iam:PassRole'
      resource = arn.role(r.pick(['app-task-role', 'ecsTaskExecutionRole', 'service-role/app-exec', 'admin']))
      ctx = { 'iam:PassedToService': PASSED_TO }
      break
  }
  const req = ecsRequest({ who, session: who === 'ci-runner' ? 'build-17' : 'cli', region, action, resource, ctx })

  // policy values: wildcards only after the first "/" or ":" of the resource
  // part (KNOWN_QUIRKS: iam-simulate reads the resource-type prefix literally)
  const clusterValues = [
    arn.cluster,
    `arn:aws:ecs:${region}:${A}:cluster/main`,
    `arn:aws:ecs:${region}:${A}:cluster/prod-east`,
    `arn:aws:ecs:*:${A}:cluster/main`,
    `arn:aws:ecs:${region}:${A}:cluster/*`,
    `arn:aws:ecs:${region}:${A}:cluster/ma*`,
    `arn:aws:ecs:${other}:${A}:cluster/main`,
    `arn:aws:ecs:\${aws:RequestedRegion}:${A}:cluster/main`,
    `arn:aws:ecs:${region}:${A}:cluster/MAIN`
  ]
  const tdValues = [
    arn.td,
    `arn:aws:ecs:*:${A}:task-definition/app:*`,
    `arn:aws:ecs:${region}:${A}:task-definition/web:*`,
    `arn:aws:ecs:${region}:${A}:task-definition/app*`,
    `arn:aws:ecs:${region}:${A}:task-definition/*`
  ]
  const serviceValues = [PASSED_TO, PASSED_TO, 'ec2.amazonaws.com', 'ecs.amazonaws.com', 'ecs-tasks.*', '*.amazonaws.com', 'ECS-TASKS.amazonaws.com', 'lambda.amazonaws.com']
  const resourcePatterns = [
    '*',
    '*',
    resource,
    resource,
    `arn:aws:ecs:${region}:${A}:task-definition/app:*`,
    `arn:aws:ecs:*:${A}:task-definition/app:*`,
    `arn:aws:ecs:${region}:${A}:task-definition/web:*`,
    `arn:aws:ecs:${region}:${A}:task-definition/app*`,
    `arn:aws:ecs:${other}:${A}:task-definition/*`,
    `arn:aws:ecs:us-east-?:${A}:task-definition/app:?`,
    `arn:aws:ecs:\${aws:RequestedRegion}:${A}:task-definition/app:*`,
    `arn:aws:ecs:${region}:${A}:task/main/*`,
    'arn:aws:ecs:*:*:task/*',
    `arn:aws:ecs:${region}:${A}:service/main/*`,
    `arn:aws:ecs:${region}:${A}:service/*/web`,
    `arn:aws:ecs:*:${A}:cluster/main`,
    `arn:aws:ecs:${region}:${A}:container-instance/main/*`,
    `arn:aws:ecs:${region}:${A}:*`,
    `arn:aws:iam::${A}:role/app-task-role`,
    `arn:aws:iam::${A}:role/*`,
    `arn:aws:iam::${A}:role/ecs*`,
    'arn:aws:iam::*:role/service-role/*',
    `arn:aws:iam::${A}:role/app-*`
  ]
  const actionPatterns = [
    action,
    action,
    action,
    action.toLowerCase(),
    'ecs:*',
    'ecs:Run*',
    'ecs:*Task',
    'ecs:Describe*',
    'ecs:List*',
    'ecs:*Service',
    'ecs:RunTask',
    'ecs:CreateService',
    'ecs:*TaskDefinition*',
    'iam:PassRole',
    'iam:Pass*',
    'iam:*',
    '*',
    'iam:GetRole'
  ]
  const ifx = () => (r.chance(0.2) ? 'IfExists' : '')
  const condition = () => {
    const c = {}
    const add = (op, key, values) => {
      if (!c[op]) c[op] = {}
      c[op][key] = values.length === 1 && r.chance(0.5) ? values[0] : values
    }
    const n = r.int(1, 2)
    for (let i = 0; i < n; i++) {
      switch (r.int(0, 10)) {
        case 0:
        case 1:
          add(r.pick(['ArnEquals', 'ArnLike', 'ArnNotEquals', 'ArnNotLike', 'StringEquals', 'StringLike', 'StringNotEquals']) + ifx(), 'ecs:cluster', r.some(clusterValues, 1, 2))
          break
        case 2:
        case 3:
          add(r.pick(['ArnEquals', 'ArnLike', 'ArnNotLike', 'StringLike']) + ifx(), 'ecs:task-definition', r.some(tdValues, 1, 2))
          break
        case 4:
        case 5:
          add(r.pick(['StringEquals', 'StringLike', 'StringNotEquals', 'StringNotLike', 'StringEqualsIgnoreCase']) + ifx(), 'iam:PassedToService', r.some(serviceValues, 1, 2))
          break
        case 6:
          // a set operator on a single-valued key (no IfExists: KNOWN_QUIRKS)
          add(r.pick(['ForAnyValue:StringEquals', 'ForAllValues:StringLike']), 'iam:PassedToService', r.some(serviceValues, 1, 2))
          break
        case 7:
          add(r.pick(['StringEquals', 'StringNotEquals', 'StringLike']), 'aws:RequestedRegion', r.some(['us-east-1', 'us-east-2', 'us-east-*'], 1, 2))
          break
        case 8:
          add(r.pick(['ArnLike', 'ArnEquals', 'ArnNotLike']), 'aws:PrincipalArn', r.some([`arn:aws:iam::${A}:role/deployer`, `arn:aws:iam::${A}:role/ci-*`, `arn:aws:iam::${A}:root`], 1, 2))
          break
        case 9:
          add('StringEquals', 'aws:PrincipalType', [r.pick(['AssumedRole', 'Account'])])
          break
        case 10:
          add('Null', r.pick(['ecs:cluster', 'ecs:task-definition', 'iam:PassedToService']), [r.pick(['true', 'false'])])
          break
      }
    }
    return c
  }
  const statement = (index) => {
    const s = {}
    if (r.chance(0.3)) s.Sid = 'S' + index
    s.Effect = r.chance(0.75) ? 'Allow' : 'Deny'
    if (r.chance(0.35)) {
      // shaped like the policies the issue names: RunTask on a family with
      // an ecs:cluster condition, CreateService with ecs:task-definition,
      // PassRole on one role or all with iam:PassedToService
      const shape = r.pick(['run', 'service', 'pass'])
      if (shape === 'run') {
        s.Action = r.pick(['ecs:RunTask', ['ecs:RunTask', 'ecs:StartTask']])
        s.Resource = r.pick(resourcePatterns.slice(4, 11))
        if (r.chance(0.7)) s.Condition = { [r.pick(['ArnEquals', 'ArnLike', 'StringEquals'])]: { 'ecs:cluster': r.pick(clusterValues) } }
      } else if (shape === 'service') {
        s.Action = r.pick(['ecs:CreateService', 'ecs:UpdateService', 'ecs:*Service'])
        s.Resource = r.pick(['*', `arn:aws:ecs:${region}:${A}:service/main/*`])
        if (r.chance(0.7)) s.Condition = { [r.pick(['ArnEquals', 'ArnLike', 'ArnNotLike'])]: { 'ecs:task-definition': r.pick(tdValues) } }
      } else {
        s.Action = 'iam:PassRole'
        s.Resource = r.pick([`arn:aws:iam::${A}:role/app-task-role`, `arn:aws:iam::${A}:role/*`, '*'])
        if (r.chance(0.7)) s.Condition = { [r.pick(['StringEquals', 'StringLike'])]: { 'iam:PassedToService': r.pick(serviceValues) } }
      }
      return s
    }
    const acts = r.some(actionPatterns, 1, 3)
    if (r.chance(0.15)) s.NotAction = acts.length === 1 ? acts[0] : acts
    else s.Action = acts.length === 1 ? acts[0] : acts
    const res = r.some(resourcePatterns, 1, 3)
    if (r.chance(0.1)) s.NotResource = res.length === 1 ? res[0] : res
    else s.Resource = res.length === 1 ? res[0] : res
    if (r.chance(0.5)) s.Condition = condition()
    return s
  }
  const policy = (lo, hi) => {
    const st = []
    const n = r.int(lo, hi)
    for (let i = 0; i < n; i++) st.push(statement(i))
    const doc = { Version: '2012-10-17', Statement: st.length === 1 && r.chance(0.3) ? st[0] : st }
    if (!JSON.stringify(doc).includes('${') && r.chance(0.1)) doc.Version = '2008-10-17'
    return doc
  }
  const identity = []
  let boundary = []
  if (who === 'root') {
    // authz.c gives the root one allow-all policy and no boundary; half the
    // cases add policies beside it (their Deny statements must still count)
    identity.push(ALLOW_ALL)
    if (r.chance(0.5)) for (let i = r.int(1, 2); i > 0; i--) identity.push(policy(1, 3))
  } else {
    const nid = r.chance(0.05) ? 0 : r.int(1, 3)
    for (let i = 0; i < nid; i++) identity.push(policy(1, 4))
    if (r.chance(0.35)) boundary = [policy(1, 3)]
  }
  return { ...req, identity, boundary, resourcePolicy: null, family: 'ecs' }
}

// Listed cases: each names what the issue asks for and carries the decision
// AWS's documented evaluation logic gives; both tools must give it.
function ecsListedCases() {
  const A = ECS_ACCT
  const doc = (...st) => ({ Version: '2012-10-17', Statement: st })
  const allow = (Action, Resource, Condition) => ({ Effect: 'Allow', Action, Resource, ...(Condition ? { Condition } : {}) })
  const deny = (Action, Resource, Condition) => ({ Effect: 'Deny', Action, Resource, ...(Condition ? { Condition } : {}) })
  const e1 = ecsArns('us-east-1', 'main', 'app', 3)
  const e2 = ecsArns('us-east-2', 'prod-east', 'app-worker', 1)
  const web = ecsArns('us-east-1', 'main', 'web', 12)
  const appFamily = `arn:aws:ecs:us-east-1:${A}:task-definition/app:*`
  const run = (arn, region, extra = {}) =>
    ecsRequest({ who: 'deployer', region, action: 'ecs:RunTask', resource: arn.td, ctx: { 'ecs:cluster': arn.cluster, ...extra } })
  const pass = (role, who = 'deployer') =>
    ecsRequest({ who, region: 'us-east-1', action: 'iam:PassRole', resource: `arn:aws:iam::${A}:role/${role}`, ctx: { 'iam:PassedToService': PASSED_TO } })
  const inMain = (action, resource, extra = {}) => ecsRequest({ who: 'deployer', region: 'us-east-1', action, resource, ctx: { 'ecs:cluster': e1.cluster, ...extra } })
  const L = []
  const add = (name, expect, req, identity, boundary = []) =>
    L.push({ name, ...(expect ? { expect } : {}), ...req, identity, boundary, resourcePolicy: null, family: 'ecs-listed' })

  add('RunTask on its family wildcard', 'Allowed', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', appFamily))])
  add('RunTask: app:* does not cover family app-worker', 'ImplicitlyDenied', run(ecsArns('us-east-1', 'main', 'app-worker', 3), 'us-east-1'), [doc(allow('ecs:RunTask', appFamily))])
  add('RunTask: another family', 'ImplicitlyDenied', run(web, 'us-east-1'), [doc(allow('ecs:RunTask', appFamily))])
  add('RunTask: the family in another region', 'ImplicitlyDenied', run(ecsArns('us-east-2', 'main', 'app', 3), 'us-east-2'), [doc(allow('ecs:RunTask', appFamily))])
  add('RunTask: ArnEquals ecs:cluster matching', 'Allowed', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', appFamily, { ArnEquals: { 'ecs:cluster': e1.cluster } }))])
  add('RunTask: ArnEquals ecs:cluster another cluster', 'ImplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', appFamily, { ArnEquals: { 'ecs:cluster': `arn:aws:ecs:us-east-1:${A}:cluster/prod-east` } }))])
  add('RunTask: ArnLike ecs:cluster matching', 'Allowed', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', '*', { ArnLike: { 'ecs:cluster': `arn:aws:ecs:*:${A}:cluster/ma*` } }))])
  add('RunTask: ArnLike ecs:cluster not matching', 'ImplicitlyDenied', run(e2, 'us-east-2'), [doc(allow('ecs:RunTask', '*', { ArnLike: { 'ecs:cluster': `arn:aws:ecs:*:${A}:cluster/ma*` } }))])
  add('RunTask: StringEquals ecs:cluster matching', 'Allowed', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', '*', { StringEquals: { 'ecs:cluster': e1.cluster } }))])
  add('RunTask: StringEquals ecs:cluster is case-sensitive', 'ImplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:RunTask', '*', { StringEquals: { 'ecs:cluster': `arn:aws:ecs:us-east-1:${A}:cluster/MAIN` } }))])
  // No decision asserted: IAM replaces variables before matching, so AWS
  // should allow; but aws/policy.c and iam-simulate both split the policy ARN
  // at ':' first, which cuts ${aws:RequestedRegion} in two, and both deny.
  // Compared only, reported (tests/oracle/README.md, "Shared by both tools").
  add('RunTask: ecs:cluster through ${aws:RequestedRegion} in the region field', null, run(e2, 'us-east-2'), [doc(allow('ecs:RunTask', '*', { ArnEquals: { 'ecs:cluster': `arn:aws:ecs:\${aws:RequestedRegion}:${A}:cluster/prod-east` } }))])
  add('StartTask: Deny outside the main cluster (ArnNotEquals), in main', 'Allowed', ecsRequest({ who: 'deployer', region: 'us-east-1', action: 'ecs:StartTask', resource: e1.td, ctx: { 'ecs:cluster': e1.cluster } }),
    [doc(allow('ecs:*', '*'), deny('ecs:*', '*', { ArnNotEquals: { 'ecs:cluster': e1.cluster } }))])
  add('StartTask: Deny outside the main cluster (ArnNotEquals), in prod-east', 'ExplicitlyDenied', ecsRequest({ who: 'deployer', region: 'us-east-2', action: 'ecs:StartTask', resource: e2.td, ctx: { 'ecs:cluster': e2.cluster } }),
    [doc(allow('ecs:*', '*'), deny('ecs:*', '*', { ArnNotEquals: { 'ecs:cluster': e1.cluster } }))])
  add('RunTask: Deny on the family beats Allow ecs:*', 'ExplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:*', '*')), doc(deny('ecs:RunTask', appFamily))])
  add('RunTask: Deny on another family leaves the Allow', 'Allowed', run(web, 'us-east-1'), [doc(allow('ecs:*', '*')), doc(deny('ecs:RunTask', appFamily))])
  add('CreateService: ArnLike ecs:task-definition matching', 'Allowed', inMain('ecs:CreateService', e1.service('web'), { 'ecs:task-definition': e1.td }),
    [doc(allow('ecs:CreateService', `arn:aws:ecs:us-east-1:${A}:service/main/*`, { ArnLike: { 'ecs:task-definition': `arn:aws:ecs:*:${A}:task-definition/app:*` } }))])
  add('UpdateService: ArnLike ecs:task-definition another family', 'ImplicitlyDenied', inMain('ecs:UpdateService', e1.service('web'), { 'ecs:task-definition': web.td }),
    [doc(allow('ecs:UpdateService', `arn:aws:ecs:us-east-1:${A}:service/main/*`, { ArnLike: { 'ecs:task-definition': `arn:aws:ecs:*:${A}:task-definition/app:*` } }))])
  add('UpdateService: Deny unless ecs:task-definition is app (ArnNotLike)', 'ExplicitlyDenied', inMain('ecs:UpdateService', e1.service('api'), { 'ecs:task-definition': web.td }),
    [doc(allow('ecs:*', '*'), deny('ecs:UpdateService', '*', { ArnNotLike: { 'ecs:task-definition': appFamily } }))])
  add('NotAction: everything but iam, RunTask', 'Allowed', run(e1, 'us-east-1'), [doc({ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' })])
  add('NotAction: everything but iam, PassRole', 'ImplicitlyDenied', pass('app-task-role'), [doc({ Effect: 'Allow', NotAction: 'iam:*', Resource: '*' })])
  add('Deny NotAction ecs:Describe*/List*: StopTask', 'ExplicitlyDenied', inMain('ecs:StopTask', e1.task),
    [doc(allow('ecs:*', '*'), { Effect: 'Deny', NotAction: ['ecs:Describe*', 'ecs:List*'], Resource: '*' })])
  add('Deny NotAction ecs:Describe*/List*: DescribeTasks', 'Allowed', inMain('ecs:DescribeTasks', e1.task),
    [doc(allow('ecs:*', '*'), { Effect: 'Deny', NotAction: ['ecs:Describe*', 'ecs:List*'], Resource: '*' })])
  add('PassRole on that one role', 'Allowed', pass('app-task-role'), [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/app-task-role`))])
  add('PassRole on one role, another role passed', 'ImplicitlyDenied', pass('admin'), [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/app-task-role`))])
  add('PassRole on role/*: a role with a path', 'Allowed', pass('service-role/app-exec'), [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/*`))])
  add('PassRole: StringEquals iam:PassedToService matching', 'Allowed', pass('admin'), [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/*`, { StringEquals: { 'iam:PassedToService': PASSED_TO } }))])
  add('PassRole: StringEquals iam:PassedToService another service', 'ImplicitlyDenied', pass('admin'), [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/*`, { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } }))])
  add('PassRole: StringLike iam:PassedToService matching', 'Allowed', pass('app-task-role'), [doc(allow('iam:PassRole', '*', { StringLike: { 'iam:PassedToService': 'ecs-tasks.*' } }))])
  add('PassRole: StringLike iam:PassedToService not matching', 'ImplicitlyDenied', pass('app-task-role'), [doc(allow('iam:PassRole', '*', { StringLike: { 'iam:PassedToService': 'ecs.*' } }))])
  add('PassRole: Deny unless passed to ecs-tasks (StringNotEquals)', 'Allowed', pass('app-task-role'),
    [doc(allow('iam:PassRole', '*'), deny('iam:PassRole', '*', { StringNotEquals: { 'iam:PassedToService': PASSED_TO } }))])
  add('PassRole: Deny to ecs-tasks', 'ExplicitlyDenied', pass('app-task-role'), [doc(allow('iam:PassRole', '*')), doc(deny('iam:PassRole', '*', { StringLike: { 'iam:PassedToService': 'ecs-*' } }))])
  add('boundary allows Describe*/List* only: RunTask', 'ImplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:*', '*'))], [doc(allow(['ecs:Describe*', 'ecs:List*'], '*'))])
  add('boundary allows Describe*/List* only: ListTasks', 'Allowed', inMain('ecs:ListTasks', '*'), [doc(allow('ecs:*', '*'))], [doc(allow(['ecs:Describe*', 'ecs:List*'], '*'))])
  add('boundary: PassRole inside role/app-*', 'Allowed', pass('app-task-role'), [doc(allow('iam:PassRole', '*'))], [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/app-*`, { StringEquals: { 'iam:PassedToService': PASSED_TO } }))])
  add('boundary: PassRole outside role/app-*', 'ImplicitlyDenied', pass('admin'), [doc(allow('iam:PassRole', '*'))], [doc(allow('iam:PassRole', `arn:aws:iam::${A}:role/app-*`))])
  add('boundary Deny on ecs:cluster', 'ExplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:*', '*'))], [doc(allow('*', '*'), deny('ecs:RunTask', '*', { ArnLike: { 'ecs:cluster': `arn:aws:ecs:*:${A}:cluster/main` } }))])
  add('boundary allows, identity does not', 'ImplicitlyDenied', run(e1, 'us-east-1'), [doc(allow('ecs:Describe*', '*'))], [doc(allow('ecs:*', '*'))])
  add('ListTasks: ArnEquals ecs:cluster on "*"', 'Allowed', inMain('ecs:ListTasks', '*'), [doc(allow('ecs:ListTasks', '*', { ArnEquals: { 'ecs:cluster': e1.cluster } }))])
  add('ListServices: ecs:cluster another cluster', 'ImplicitlyDenied', inMain('ecs:ListServices', '*'), [doc(allow('ecs:ListServices', '*', { ArnEquals: { 'ecs:cluster': e2.cluster } }))])
  add('ListClusters on "*": a statement on cluster ARNs does not cover it', 'ImplicitlyDenied', ecsRequest({ who: 'deployer', region: 'us-east-1', action: 'ecs:ListClusters', resource: '*', ctx: {} }),
    [doc(allow('ecs:List*', `arn:aws:ecs:*:${A}:cluster/*`))])
  add('DescribeClusters on the cluster ARN', 'Allowed', ecsRequest({ who: 'deployer', region: 'us-east-1', action: 'ecs:DescribeClusters', resource: e1.cluster, ctx: {} }),
    [doc(allow('ecs:DescribeClusters', `arn:aws:ecs:us-east-1:${A}:cluster/main`))])
  add('root with the allow-all policy: RunTask', 'Allowed', ecsRequest({ who: 'root', region: 'us-east-1', action: 'ecs:RunTask', resource: e1.td, ctx: { 'ecs:cluster': e1.cluster } }), [ALLOW_ALL])
  add('root with the allow-all policy: PassRole', 'Allowed', pass('admin', 'root'), [ALLOW_ALL])
  add('root: a Deny beside the allow-all policy', 'ExplicitlyDenied', pass('admin', 'root'), [ALLOW_ALL, doc(deny('iam:PassRole', `arn:aws:iam::${A}:role/admin`))])
  return L
}

// What an ECS case exercises, for the summary: the statements of its
// identity policies and boundary that name its action's service.
function ecsCoverage(c) {
  const tags = new Set()
  const svc = c.action.split(':')[0]
  if (c.principal.endsWith(':root')) tags.add('root')
  if (c.boundary.length) tags.add('boundary')
  for (const p of [...c.identity, ...c.boundary])
    for (const st of [].concat(p.Statement)) {
      const acts = [].concat(st.Action || st.NotAction)
      if (!acts.some((a) => a === '*' || a.toLowerCase().startsWith(svc + ':'))) continue
      if (st.Effect === 'Deny') tags.add('Deny')
      if (st.NotAction) tags.add('NotAction')
      if (st.NotResource) tags.add('NotResource')
      for (const r of [].concat(st.Resource || [])) {
        if (/task-definition\/app:\*$/.test(r)) tags.add('Resource task-definition/app:*')
        if (/task-definition\/web:\*$/.test(r)) tags.add('Resource task-definition/web:*')
        if (/:role\/app-task-role$/.test(r)) tags.add('Resource one role')
        if (/:role\/\*$/.test(r)) tags.add('Resource role/*')
      }
      for (const [op, keys] of Object.entries(st.Condition || {}))
        for (const k of Object.keys(keys))
          if (/^(ecs:cluster|ecs:task-definition|iam:passedtoservice)$/i.test(k)) tags.add(`${op.replace(/IfExists$/, '[IfExists]')} ${k}`)
    }
  return tags
}

async function normaliseContext(sim, c) {
  // keep only the keys iam-simulate accepts for this action, typed like it
  // types them, so that both evaluators see the same request
  const [service, action] = c.action.split(':')
  const allowed = new Set(await sim.allowedContextKeysForRequest(service, action, c.resource, false))
  const hasPrefix = (k) => {
    const i = k.indexOf('/')
    if (i < 0) return false
    const p = k.slice(0, i + 1)
    for (const a of allowed) if (a.startsWith(p)) return true
    return false
  }
  const out = {}
  for (const [k, v] of Object.entries(c.ctx)) {
    const lk = k.toLowerCase()
    if (!allowed.has(lk) && !hasPrefix(lk)) continue
    const type = await sim.typeForContextKey(lk)
    if (sim.isConditionKeyArray(type)) out[k] = [].concat(v)
    else out[k] = Array.isArray(v) ? v[0] : v
    if (out[k] === undefined) delete out[k]
  }
  return out
}

async function main() {
  const a = args()
  const sim = require('@cloud-copilot/iam-simulate')
  const r = rng(a.seed)
  const cases = []
  for (let i = 0; i < a.cases; i++) {
    const c = randomCase(r)
    c.ctx = await normaliseContext(sim, c)
    cases.push(c)
  }
  // the ECS API's questions: their own stream, then the listed cases
  const er = rng(ecsSeed(a.seed))
  for (let i = 0; i < a['ecs-cases']; i++) {
    const c = randomEcsCase(er)
    c.ctx = await normaliseContext(sim, c)
    cases.push(c)
  }
  for (const c of ecsListedCases()) {
    c.ctx = await normaliseContext(sim, c)
    cases.push(c)
  }
  const ours = runOurs(a.tool, cases)
  let agree = 0
  let differ = 0
  let errors = 0
  const tally = {}
  const shown = []
  const quirkHits = {}
  // the ECS API's cases on their own: how many, their decisions, the actions
  const ecs = { cases: 0, listed: 0, expected: 0, agree: 0, differ: 0, explained: 0, wrong: 0, tally: {}, actions: {}, cover: {} }
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]
    const theirs = await runTheirs(sim, c)
    const mine = ours[i].split(' ')[0]
    const isEcs = c.family === 'ecs' || c.family === 'ecs-listed'
    if (isEcs) {
      ecs.cases++
      if (c.family === 'ecs-listed') ecs.listed++
      if (c.expect) ecs.expected++
      for (const t of ecsCoverage(c)) (ecs.cover[t] = ecs.cover[t] || { n: 0 }).n++
      ecs.actions[c.action] = (ecs.actions[c.action] || 0) + 1
    }
    if (theirs.startsWith('error') || mine === 'error') {
      errors++
      if (shown.length < a.show) shown.push({ i, ours: ours[i], theirs, c })
      continue
    }
    tally[mine] = (tally[mine] || 0) + 1
    if (isEcs) {
      ecs.tally[mine] = (ecs.tally[mine] || 0) + 1
      for (const t of ecsCoverage(c)) ecs.cover[t][mine] = (ecs.cover[t][mine] || 0) + 1
    }
    // a listed case must also give the decision AWS documents for it
    if (c.expect && mine !== c.expect) {
      differ++
      ecs.wrong++
      if (shown.length < a.show) shown.push({ i, ours: ours[i], theirs, c })
      continue
    }
    if (mine === theirs) {
      agree++
      if (isEcs) ecs.agree++
      continue
    }
    let explained = null
    for (const q of REWRITE_QUIRKS) {
      const rc = q.rewriteCase ? q.rewriteCase(c) : rewriteCase(c, q.rewrite)
      const ours2 = runOurs(a.tool, [rc])[0].split(' ')[0]
      const theirs2 = await runTheirs(sim, rc)
      if (ours2 === mine && theirs2 === mine) {
        explained = q.name
        break
      }
    }
    if (explained) {
      quirkHits[explained] = (quirkHits[explained] || 0) + 1
      if (isEcs) ecs.explained++
      continue
    }
    differ++
    if (isEcs) ecs.differ++
    if (shown.length < a.show) shown.push({ i, ours: ours[i], theirs, c })
  }
  for (const s of shown) {
    console.log(`--- case ${s.i}${s.c.name ? ` (${s.c.name}${s.c.expect ? `, AWS: ${s.c.expect}` : ''})` : ''}: ours=${s.ours} | iam-simulate=${s.theirs}`)
    console.log(JSON.stringify({ principal: s.c.principal, action: s.c.action, resource: s.c.resource, ctx: s.c.ctx }))
    console.log('identity:', JSON.stringify(s.c.identity))
    if (s.c.boundary.length) console.log('boundary:', JSON.stringify(s.c.boundary))
    if (s.c.resourcePolicy) console.log('resource:', JSON.stringify(s.c.resourcePolicy))
  }
  console.log(`decisions: ${JSON.stringify(tally)}`)
  console.log(
    `ECS API cases (ECS actions and iam:PassRole): ${ecs.cases} (${ecs.cases - ecs.listed} generated, ${ecs.listed} listed, ${ecs.expected} of them with AWS's decision), ` +
      `${ecs.agree} agree, ${ecs.differ} differ, ${ecs.explained} explained${ecs.wrong ? `, ${ecs.wrong} listed cases against AWS's decision` : ''}; ` +
      `decisions: ${JSON.stringify(ecs.tally)}`
  )
  console.log(`ECS API actions: ${JSON.stringify(ecs.actions)}`)
  const short = { Allowed: 'A', ExplicitlyDenied: 'E', ImplicitlyDenied: 'I' }
  const cover = Object.keys(ecs.cover)
    .sort()
    .map((t) => `${t} ${ecs.cover[t].n}(${Object.keys(short).map((k) => `${short[k]}${ecs.cover[t][k] || 0}`).join(' ')})`)
  console.log(`ECS API coverage, cases with (A/E/I = Allowed/ExplicitlyDenied/ImplicitlyDenied): ${cover.join(', ')}`)
  console.log(`iam-simulate quirks avoided by the generator: ${KNOWN_QUIRKS.length}`)
  for (const q of REWRITE_QUIRKS)
    console.log(`explained difference ${q.name}: ${quirkHits[q.name] || 0} cases (${q.what})`)
  const quirks = Object.values(quirkHits).reduce((x, y) => x + y, 0)
  console.log(`${agree} agree, ${differ} differ${quirks ? ` (+${quirks} explained above)` : ''}${errors ? `, ${errors} errors` : ''}`)
  process.exit(differ || errors ? 1 : 0)
}

function runOurs(tool, cases) {
  const input = cases
    .map((c) =>
      JSON.stringify({
        identity: c.identity.map((p) => JSON.stringify(p)),
        boundary: c.boundary.map((p) => JSON.stringify(p)),
        resource: c.resourcePolicy ? JSON.stringify(c.resourcePolicy) : undefined,
        principal: c.principal,
        action: c.action,
        resource_arn: c.resource,
        context: c.ctx
      })
    )
    .join('\n')
  const run = spawnSync(path.resolve(tool), [], { input: input + '\n', maxBuffer: 1 << 28 })
  if (run.status !== 0) {
    console.error('policy_eval failed:', run.status, run.stderr.toString())
    process.exit(1)
  }
  const ours = run.stdout.toString().trim().split('\n')
  if (ours.length !== cases.length) {
    console.error(`policy_eval printed ${ours.length} lines for ${cases.length} cases`)
    process.exit(1)
  }
  return ours
}

async function runTheirs(sim, c) {
    const simulation = {
      request: {
        principal: c.principal,
        action: c.action,
        resource: { resource: c.resource, accountId: c.racct },
        contextVariables: c.ctx
      },
      identityPolicies: c.identity.map((p, k) => ({ name: `identity${k}`, policy: p })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: c.resourcePolicy || undefined,
      permissionBoundaryPolicies: c.boundary.length ? c.boundary.map((p, k) => ({ name: `pb${k}`, policy: p })) : undefined
    }
    let theirs
    try {
      const res = await sim.runSimulation(simulation, {})
      theirs = res.resultType === 'error' ? 'error ' + JSON.stringify(res.errors).slice(0, 300) : res.overallResult
    } catch (e) {
      theirs = 'error ' + e.message
    }
    return theirs
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
