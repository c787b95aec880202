/* list.h: the intrusive doubly-linked list of the client, the daemon and
 * rstmdb-testd. A list is a circular ring through a head node: insertion
 * and removal are O(1) and need no NULL checks, and a node knows whether it
 * is linked. The list never owns its nodes; the embedding object does. */
#ifndef RSTMDB_COMMON_LIST_H
#define RSTMDB_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node;

/* The object that embeds `node` as `member`. */
#define list_entry(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Walk a list whose current node may be unlinked (or freed) in the body. */
#define list_each_safe(pos, tmp, head)                               \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
         (pos) = (tmp), (tmp) = (pos)->next)

/* A head, or a node that belongs to no list (both point at itself). */
static inline void list_init(list_node *n)
{
    n->prev = n->next = n;
}

static inline bool list_empty(const list_node *head)
{
    return head->next == head;
}

/* Is `n` on a list? (Only for nodes list_init'ed or removed with list_remove.) */
static inline bool list_linked(const list_node *n)
{
    return n->next != n;
}

static inline void list_insert_after(list_node *at, list_node *n)
{
    n->prev = at;
    n->next = at->next;
    at->next->prev = n;
    at->next = n;
}

static inline void list_push_back(list_node *head, list_node *n)
{
    list_insert_after(head->prev, n);
}

static inline void list_push_front(list_node *head, list_node *n)
{
    list_insert_after(head, n);
}

/* Unlink `n` (a no-op for an unlinked node) and leave it unlinked. */
static inline void list_remove(list_node *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* The first node, or NULL when empty. */
static inline list_node *list_first(const list_node *head)
{
    return list_empty(head) ? NULL : head->next;
}

#endif
