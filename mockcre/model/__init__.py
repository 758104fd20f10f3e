"""The model: items, pools, users and their actions per partition (``store``), the rankings
(``recommend``) and the one clock everything reads (``clock``). It knows no wire format: the dialects
above turn bodies into its records and its rankings into replies.
"""
