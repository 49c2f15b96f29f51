// The task wall (任务墙) of the checkin and cards previews: start a task, complete it with the token the start
// answered. The API checks the task's minimum time; the page shows the wait and the API's answer, early or not.
"use strict";
const PreviewTasks = (() => {
  const {words, find, format, count, el, button, reward, play, countdown} = Preview;
  // The token each started task was given, and when its minimum time is up by this browser's clock. The view
  // does not show tokens, so a task started before a reload is started again.
  const started = new Map();

  function pays(task) {
    const parts = task.chances ? [count(task.chances, words.task_chance, words.task_chances)] : [];
    if (task.reward) parts.push(reward(task.reward));
    return parts.join(" · ");
  }

  function begin(task) {
    play("task_start", {task: task.task}, (outcome) => {
      started.set(task.task, {token: outcome.token, after: Date.now() + outcome.complete_after_seconds * 1000});
      return format(words.task_started, {title: task.title, seconds: outcome.complete_after_seconds});
    });
  }

  function complete(task) {
    play("task_complete", {task: task.task, token: started.get(task.task).token}, (outcome, answer) => {
      started.delete(task.task);
      const won = answer.grants.map((grant) => format(words.task_won, {reward: reward(grant.reward)}));
      return [format(words.task_done, {title: task.title}), ...won].join(" ");
    });
  }

  function item(task) {
    const li = el("li");
    li.dataset.task = task.task;
    li.append(el("span", "name", task.title), el("small", "pays", pays(task)),
      el("small", "", format(words.task_done_today, {done: task.done_today, cap: task.daily_cap})));
    if (task.min_dwell_seconds) li.append(el("small", "", format(words.task_dwell, {seconds: task.min_dwell_seconds})));
    const buttons = el("div", "buttons");
    buttons.append(button(words.task_start, "task_start", () => begin(task)));
    const mine = started.get(task.task);
    if (mine) {
      buttons.append(button(words.task_complete, "task_complete", () => complete(task), "primary"));
      const wait = el("small", "wait");
      wait.dataset.testid = "wait";
      countdown(wait, mine.after, words.task_wait, {done: words.task_ready});
      li.append(buttons, wait);
    } else {
      li.append(buttons);
    }
    return li;
  }

  // The wall as the player's view lists it (me.tasks): each task with what it pays and what was done today.
  function draw(tasks) {
    find("task-wall").hidden = !tasks.length;
    find("tasks").replaceChildren(...tasks.map(item));
  }

  return {draw};
})();
