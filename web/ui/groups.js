// Groups: creating one, and the group's info — rename, picture, join policy, members with
// roles (add, remove, promote, hand over), leave and dissolve. What is offered follows the
// viewer's role; the server decides, and its message is shown when it refuses.

import { h, icon } from '../dom.js';
import { api } from '../api.js';
import { avatar } from './avatar.js';
import { openDialog, confirmDialog } from './dialog.js';
import { openCropper } from './cropper.js';

export function openCreateGroup(ctx) {
  const { state } = ctx;
  const name = h('input', { id: 'group-name', maxlength: '64', required: true, testid: 'group-name', autocomplete: 'off' });
  const open = h('input', { type: 'radio', name: 'policy', value: 'open', checked: true, id: 'policy-open' });
  const approval = h('input', { type: 'radio', name: 'policy', value: 'approval', id: 'policy-approval', testid: 'policy-approval' });
  const history = h('input', { type: 'checkbox', id: 'group-history', checked: true });
  const create = h('button', { type: 'submit', class: 'btn primary', text: 'Create group', testid: 'create-group' });
  const form = h('form', { class: 'stack', id: 'create-group-form', onsubmit: async (e) => {
    e.preventDefault();
    create.disabled = true;
    d.error('');
    try {
      const { group } = await api.post('/groups', {
        name: name.value,
        join_policy: approval.checked ? 'approval' : 'open',
        history_visible_to_new_members: history.checked,
      });
      state.upsertGroup(group);
      const c = await api.get('/conversations');
      for (const conv of c.conversations) state.mergeConv(conv);
      const conv = state.convOfGroup(group.id);
      if (conv) conv.touched = Date.now();
      state.emit('groups');
      state.emit('convs');
      d.close();
      if (conv) ctx.openConversation(conv.id);
    } catch (err) {
      d.error(err.message);
      create.disabled = false;
    }
  } },
  h('div', { class: 'field' }, h('label', { for: 'group-name', text: 'Name' }), name),
  h('fieldset', { class: 'field' }, h('legend', { text: 'Who can join' }),
    h('label', { class: 'check-row' }, open, h('span', { text: 'Anyone who finds it' })),
    h('label', { class: 'check-row' }, approval, h('span', { text: 'Only people an admin approves' }))),
  h('label', { class: 'check-row' }, history, h('span', { text: 'New members can read earlier messages' })));
  const cancel = h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => d.close() });
  create.setAttribute('form', 'create-group-form');
  const d = openDialog({ title: 'New group', testid: 'create-group-dialog', body: form, footer: [cancel, create] });
}

const ROLE_LABEL = { owner: 'Owner', admin: 'Admin', member: 'Member' };

export function openGroupInfo(ctx, groupId) {
  const { state } = ctx;
  const body = h('div', { class: 'group-info', testid: 'group-info' });
  let d = null;
  const busy = new Set();
  const draft = {};

  async function act(key, fn, okText) {
    if (busy.has(key)) return;
    busy.add(key);
    d.error('');
    try {
      await fn();
      if (okText) ctx.toast(okText);
    } catch (e) {
      d.error(e.message);
    } finally {
      busy.delete(key);
      render();
    }
  }

  async function reloadMembers() {
    try {
      await state.loadMembers(groupId);
    } catch (e) {
      d.error(e.message);
    }
  }

  function render() {
    const g = state.groups.get(groupId);
    if (!g) {
      body.replaceChildren(h('p', { class: 'muted', text: 'You are no longer in this group.' }));
      return;
    }
    const me = state.me;
    const role = state.myRole(groupId);
    const manages = role === 'owner' || role === 'admin';
    const members = state.members.get(groupId) || [];

    const top = h('section', { class: 'group-top' },
      h('span', { class: 'profile-pic', testid: 'group-avatar' }, avatar(g.avatar_url, { size: 'xl' })),
      h('div', { class: 'group-top-text' },
        h('p', { class: 'profile-name', testid: 'group-info-name', text: g.name }),
        h('p', { class: 'muted', text: `${g.member_count} member${g.member_count === 1 ? '' : 's'} · ${g.join_policy === 'approval' ? 'joining needs approval' : 'open to anyone'}` }),
        manages ? h('button', { type: 'button', class: 'btn small', testid: 'change-group-avatar', onclick: () => openCropper({
          title: `Picture of ${g.name}`,
          onUpload: async (blob) => {
            const { group } = await api.upload(`/groups/${groupId}/avatar`, blob);
            state.upsertGroup(group);
            state.emit('groups');
            state.emit('group', groupId);
            state.emit('convs');
          },
        }) }, icon('camera'), h('span', { text: 'Change picture' })) : null));

    const sections = [top];
    if (manages) {
      // Edits in progress survive the re-renders that live events cause.
      const name = h('input', { id: 'rename-group', value: draft.name ?? g.name, maxlength: '64', testid: 'rename-input', oninput: (e) => { draft.name = e.target.value; } });
      const pol = draft.policy ?? g.join_policy;
      const policy = h('select', { id: 'group-policy', testid: 'group-policy', onchange: (e) => { draft.policy = e.target.value; } },
        h('option', { value: 'open', text: 'Anyone can join', selected: pol === 'open' }),
        h('option', { value: 'approval', text: 'Admins approve who joins', selected: pol === 'approval' }));
      const save = h('button', { type: 'submit', class: 'btn primary', testid: 'rename-save', text: 'Save' });
      sections.push(h('form', { class: 'stack', onsubmit: (e) => {
        e.preventDefault();
        act('save', async () => {
          const { group } = await api.patch(`/groups/${groupId}`, { name: name.value, join_policy: policy.value });
          draft.name = undefined;
          draft.policy = undefined;
          state.upsertGroup(group);
          state.emit('groups');
          state.emit('group', groupId);
          state.emit('convs');
        }, 'Group saved.');
      } },
      h('div', { class: 'field' }, h('label', { for: 'rename-group', text: 'Group name' }), name),
      h('div', { class: 'field' }, h('label', { for: 'group-policy', text: 'Joining' }), policy),
      h('div', { class: 'row end' }, save)));
    }

    const rows = members.map((m) => {
      const u = m.user;
      const self = u.id === me.id;
      const actions = [];
      if (!self && role === 'owner') {
        if (m.role === 'member') actions.push(h('button', { type: 'button', class: 'btn small', testid: 'promote', text: 'Make admin', 'aria-label': `Make ${u.display_name} an admin`, onclick: () => act(`r${u.id}`, () => api.patch(`/groups/${groupId}/members/${u.id}`, { role: 'admin' }).then(reloadMembers)) }));
        if (m.role === 'admin') actions.push(h('button', { type: 'button', class: 'btn small', testid: 'demote', text: 'Remove admin', 'aria-label': `Make ${u.display_name} a plain member`, onclick: () => act(`r${u.id}`, () => api.patch(`/groups/${groupId}/members/${u.id}`, { role: 'member' }).then(reloadMembers)) }));
        actions.push(h('button', { type: 'button', class: 'btn small', testid: 'transfer', text: 'Make owner', 'aria-label': `Hand ${g.name} over to ${u.display_name}`, onclick: async () => {
          if (await confirmDialog({ title: 'Hand over the group?', text: `${u.display_name} becomes the owner; you stay as an admin.`, confirm: 'Hand over' })) {
            act(`t${u.id}`, async () => {
              const { group } = await api.post(`/groups/${groupId}/transfer`, { user_id: u.id });
              state.upsertGroup(group);
              await reloadMembers();
            }, `${u.display_name} now owns the group.`);
          }
        } }));
      }
      const removable = !self && m.role !== 'owner' && (role === 'owner' || (role === 'admin' && m.role === 'member'));
      if (removable) {
        actions.push(h('button', { type: 'button', class: 'btn small danger', testid: 'remove-member', text: 'Remove', 'aria-label': `Remove ${u.display_name} from the group`, onclick: () => act(`x${u.id}`, async () => {
          await api.del(`/groups/${groupId}/members/${u.id}`);
          state.members.set(groupId, (state.members.get(groupId) || []).filter((x) => x.user.id !== u.id));
        }) }));
      }
      return h('li', { class: 'item result member-row', testid: 'member', dataset: { userId: u.id, role: m.role, username: u.username } },
        avatar(u.avatar_url, { size: 'sm', online: !!u.online }),
        h('span', { class: 'item-main' }, h('span', { class: 'item-title', text: self ? `${u.display_name} (you)` : u.display_name }), h('span', { class: 'item-sub muted', text: `@${u.username}` })),
        h('span', { class: ['tag', `role-${m.role}`], testid: 'member-role', text: ROLE_LABEL[m.role] || m.role }),
        h('span', { class: 'row-actions' }, actions));
    });
    sections.push(h('section', null, h('h3', { class: 'section-title', text: `Members (${members.length || g.member_count})` }),
      h('ul', { class: 'item-list', testid: 'member-list' }, rows.length ? rows : h('li', { class: 'empty small muted', text: 'Loading members…' }))));

    if (manages) {
      const inGroup = new Set(members.map((m) => m.user.id));
      const candidates = [...state.friends.values()].filter((u) => !inGroup.has(u.id));
      const pick = h('select', { id: 'add-member-select', testid: 'add-member-select', disabled: !candidates.length },
        candidates.length ? candidates.map((u) => h('option', { value: String(u.id), text: `${u.display_name} (@${u.username})` })) : h('option', { text: 'All your friends are in the group' }));
      const add = h('button', { type: 'submit', class: 'btn', testid: 'add-member', text: 'Add', disabled: !candidates.length });
      sections.push(h('form', { class: 'stack', onsubmit: (e) => {
        e.preventDefault();
        const id = Number(pick.value);
        act('add', async () => {
          const { group } = await api.post(`/groups/${groupId}/members`, { user_id: id });
          state.upsertGroup(group);
          await reloadMembers();
        }, 'Member added.');
      } }, h('label', { for: 'add-member-select', text: 'Add a friend' }), h('div', { class: 'row' }, pick, add)));
    }

    const danger = [];
    if (role !== 'owner') {
      danger.push(h('button', { type: 'button', class: 'btn danger', testid: 'leave-group', text: 'Leave group', onclick: async () => {
        if (await confirmDialog({ title: 'Leave the group?', text: `You will stop receiving messages from ${g.name}.`, confirm: 'Leave', danger: true })) {
          act('leave', async () => {
            await api.post(`/groups/${groupId}/leave`);
            state.removeGroup(groupId);
            state.emit('groups');
            state.emit('convs');
            d.close();
          }, `You left ${g.name}.`);
        }
      } }));
    } else {
      danger.push(h('button', { type: 'button', class: 'btn danger', testid: 'dissolve-group', text: 'Dissolve group', onclick: async () => {
        if (await confirmDialog({ title: 'Dissolve the group?', text: `${g.name} and its messages will be gone for every member.`, confirm: 'Dissolve', danger: true })) {
          act('dissolve', async () => {
            await api.del(`/groups/${groupId}`);
            state.removeGroup(groupId);
            state.emit('groups');
            state.emit('convs');
            d.close();
          });
        }
      } }));
    }
    sections.push(h('section', { class: 'row end danger-zone' }, danger));

    const a = document.activeElement;
    const focusKey = a && body.contains(a) ? (a.dataset.testid || a.id) + (a.closest('[data-user-id]') ? a.closest('[data-user-id]').dataset.userId : '') : null;
    body.replaceChildren(...sections);
    if (focusKey) {
      const again = [...body.querySelectorAll('button, input, select')].find((el) => (el.dataset.testid || el.id) + (el.closest('[data-user-id]') ? el.closest('[data-user-id]').dataset.userId : '') === focusKey);
      if (again) again.focus();
    }
  }

  const offs = [
    state.on('members', (id) => id === groupId && render()),
    state.on('group', (id) => id === groupId && render()),
    state.on('groups', render),
    state.on('friends', render),
  ];
  render();
  d = openDialog({ title: 'Group', testid: 'group-dialog', wide: true, body, onClose: () => offs.forEach((f) => f()) });
  reloadMembers();
}
