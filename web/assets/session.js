// Admin sign-in for the console pages. When the server has an ADMIN_TOKEN, the console asks
// for it, checks it with GET /admin/session, and keeps it in this tab's sessionStorage only.
// Without it the pages stay read-only and say why.
import { ApiError, adminToken, api } from './api.js';
import { byId, replace } from './dom.js';
import { problemView } from './problems.js';

/**
 * Wires the page's #session block; calls onChange(isAdmin) now and after every sign-in or out.
 * @param {(isAdmin: boolean) => void} onChange
 */
export function initSession(onChange) {
  const status = byId('session-status');
  const form = /** @type {HTMLFormElement} */ (byId('sign-in'));
  const input = /** @type {HTMLInputElement} */ (byId('admin-token'));
  const signOut = byId('sign-out');
  const problem = byId('session-problem');

  const show = (isAdmin, text, { canSignIn = false, canSignOut = false } = {}) => {
    status.textContent = text;
    form.hidden = !canSignIn;
    signOut.hidden = !canSignOut;
    document.body.classList.toggle('is-admin', isAdmin);
    onChange(isAdmin);
  };

  const check = async () => {
    replace(problem);
    try {
      const session = await api('/admin/session', { admin: true });
      if (!session.token_required) {
        show(true, 'Admin actions are open: this server has no ADMIN_TOKEN set.');
      } else {
        show(true, 'Signed in with the admin token.', { canSignOut: true });
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        const rejected = adminToken.get() !== null;
        adminToken.clear();
        show(
          false,
          'Read-only. Sign in with the admin token to create and edit events, and to see holds and bookings.',
          {
            canSignIn: true,
          },
        );
        if (rejected) replace(problem, problemView(error));
      } else {
        show(false, 'Read-only: admin access could not be checked.');
        replace(problem, problemView(error));
      }
    }
  };

  form.addEventListener('submit', (submitted) => {
    submitted.preventDefault();
    adminToken.set(input.value.trim());
    input.value = '';
    void check();
  });
  signOut.addEventListener('click', () => {
    adminToken.clear();
    void check();
  });
  void check();
}
